/** Forward-only numbered migrations, applied once under an advisory lock. */
import type { Db } from "./client.ts";

/** One migration file: its name (e.g. `0001_core.sql`) and SQL text. */
export interface Migration {
  name: string;
  sql: string;
}

// Arbitrary constant: every instance agrees on it, so concurrent starts serialise.
const MIGRATION_LOCK_ID = 7_261_908_412;

const MIGRATION_DIR = new URL("./migrations/", import.meta.url);

/** Reads the migration files beside this module (embedded with `deno compile --include`). */
export async function loadMigrations(dir: URL = MIGRATION_DIR): Promise<Migration[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /^\d{4}_[a-z0-9_]+\.sql$/.test(entry.name)) names.push(entry.name);
  }
  names.sort();
  return await Promise.all(
    names.map(async (name) => ({ name, sql: await Deno.readTextFile(new URL(name, dir)) })),
  );
}

/**
 * Applies the migrations not yet recorded, in order, in one transaction holding an
 * advisory lock: instances that start together apply each migration exactly once.
 * Returns the names applied by this call.
 */
export async function migrate(db: Db, migrations: Migration[]): Promise<string[]> {
  return await db.transaction(async (tx) => {
    await tx.query("select pg_advisory_xact_lock($1)", [MIGRATION_LOCK_ID]);
    await tx.exec(
      `create table if not exists schema_migrations (
         name text primary key,
         applied_at timestamptz not null default now()
       )`,
    );
    const rows = await tx.query<{ name: string }>("select name from schema_migrations");
    const done = new Set(rows.map((r) => r.name));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.name)) continue;
      await tx.exec(m.sql);
      await tx.query("insert into schema_migrations (name) values ($1)", [m.name]);
      applied.push(m.name);
    }
    return applied;
  });
}
