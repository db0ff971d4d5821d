import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { absorbBackgroundDisconnects, isUnavailable, openPostgres } from "../db/client.ts";

// The database dropping a transaction's connection (found by soak/db_outage_test.ts):
// postgres.js wrote ROLLBACK to the dead socket from a timer and the process died.
const tdb = ON_POSTGRES ? await openTestDb() : null;

for (const when of ["while a statement runs", "between two statements"]) {
  Deno.test({
    ...DB_TEST,
    ignore: !ON_POSTGRES,
    name: `transaction() rejects as unavailable when its connection is dropped ${when}`,
  }, async () => {
    const db = tdb!.db;
    const admin = openPostgres(tdb!.url!, { max: 1 });
    const unabsorb = absorbBackgroundDisconnects(() => {});
    try {
      const txn = db.transaction(async (tx) => {
        const [{ pid }] = await tx.query<{ pid: number }>("select pg_backend_pid() as pid");
        await admin.query("select pg_terminate_backend($1)", [pid]);
        if (when === "between two statements") await new Promise((r) => setTimeout(r, 200));
        await tx.query("select 1");
      });
      await assert.rejects(txn, (err) => isUnavailable(err));
      // The driver's write would fire from a timer: give it the chance to.
      await new Promise((r) => setTimeout(r, 200));
      const rows = await db.query<{ x: number }>("select 1 as x");
      assert.equal(rows[0].x, 1, "the pool serves the next query");
    } finally {
      await admin.close();
      unabsorb();
    }
  });
}
