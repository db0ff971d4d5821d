/**
 * A real database for one test file: in-memory PGlite by default, or a fresh database on
 * the PostgreSQL server named by DATABASE_URL. Migrated; `reset()` empties every table.
 */
import { type Db, openPglite, openPostgres } from "../../db/client.ts";
import { loadMigrations, migrate } from "../../db/migrate.ts";

/** A migrated database owned by one test file. */
export interface TestDb {
  db: Db;
  /** The connection URL when on PostgreSQL (for child processes), else null. */
  url: string | null;
  reset(): Promise<void>;
}

/** True when the tests run against a PostgreSQL server. */
export const ON_POSTGRES = Boolean(Deno.env.get("DATABASE_URL"));

/** Creates an empty database on the server of DATABASE_URL and returns its URL. */
export async function createScratchDatabase(): Promise<string> {
  const base = Deno.env.get("DATABASE_URL")!;
  const admin = openPostgres(base, { max: 1 });
  const name = `proplab_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  try {
    await admin.exec(`create database ${name}`);
  } finally {
    await admin.close();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Opens a fresh, empty (unmigrated) database and its URL (null on PGlite). */
export async function openEmptyDb(): Promise<{ db: Db; url: string | null }> {
  const url = ON_POSTGRES ? await createScratchDatabase() : null;
  const db = url ? openPostgres(url, { max: 20 }) : await openPglite(null);
  return { db, url };
}

/** Opens and migrates this file's database. */
export async function openTestDb(): Promise<TestDb> {
  const { db, url } = await openEmptyDb();
  await migrate(db, await loadMigrations());
  return { db, url, reset: () => resetTables(db) };
}

/** Empties every table but the migration record. */
export async function resetTables(db: Db): Promise<void> {
  const rows = await db.query<{ name: string }>(
    `select quote_ident(tablename) as name from pg_tables
      where schemaname = 'public' and tablename <> 'schema_migrations'`,
  );
  if (rows.length) {
    await db.exec(`truncate ${rows.map((r) => r.name).join(", ")} restart identity cascade`);
  }
}
