import assert from "node:assert/strict";
import { createScratchDatabase, ON_POSTGRES, openEmptyDb, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";
import { openPostgres } from "../db/client.ts";

Deno.test("loadMigrations() reads the numbered files in order", async () => {
  const ms = await loadMigrations();
  assert.ok(ms.length >= 1);
  assert.deepEqual(ms.map((m) => m.name), [...ms.map((m) => m.name)].sort());
  assert.equal(ms[0].name, "0001_core.sql");
});

Deno.test({ ...DB_TEST, name: "migrate() is idempotent" }, async () => {
  const { db } = await openTestDb();
  try {
    assert.deepEqual(await migrate(db, await loadMigrations()), []);
    const rows = await db.query<{ n: number }>("select count(*)::int as n from schema_migrations");
    assert.equal(rows[0].n, (await loadMigrations()).length);
  } finally {
    await db.close();
  }
});

Deno.test(
  { ...DB_TEST, name: "migrate() run concurrently in one process applies each once" },
  async () => {
    const { db } = await openEmptyDb();
    try {
      const ms = await loadMigrations();
      const results = await Promise.all([migrate(db, ms), migrate(db, ms), migrate(db, ms)]);
      assert.equal(results.flat().length, ms.length);
    } finally {
      await db.close();
    }
  },
);

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "`proplab migrate` in two processes at once applies each migration exactly once",
}, async () => {
  const url = await createScratchDatabase();
  const run = () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "migrate"],
      env: { DATABASE_URL: url, LOG_LEVEL: "error" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const outs = await Promise.all([run(), run()]);
  for (const o of outs) assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
  const said = outs.map((o) => new TextDecoder().decode(o.stderr));
  assert.equal(said.filter((s) => s.includes("applied")).length, 1, said.join("\n"));
  assert.equal(said.filter((s) => s.includes("up to date")).length, 1, said.join("\n"));
  const db = openPostgres(url, { max: 1 });
  try {
    const rows = await db.query<{ name: string }>("select name from schema_migrations");
    assert.equal(rows.length, (await loadMigrations()).length);
  } finally {
    await db.close();
  }
});
