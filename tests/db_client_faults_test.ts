import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import {
  absorbBackgroundDisconnects,
  availabilityTracker,
  isUnavailable,
  openPostgres,
} from "../db/client.ts";

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

/** A promise settled by hand, to order the tracked queries exactly. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => [resolve, reject] = [res, rej]);
  return { promise, resolve, reject };
}

const lost = () =>
  Object.assign(new Error("write CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED" });

Deno.test("availability: a query that was under way across a recovery reports no second outage", async () => {
  const seen: boolean[] = [];
  const track = availabilityTracker((up) => seen.push(up));
  const queuedDuringOutage = deferred<string>();
  const late = track(queuedDuringOutage.promise).catch((e) => e);
  await assert.rejects(track(Promise.reject(lost())), (e) => isUnavailable(e));
  assert.deepEqual(seen, [false], "the outage is reported");
  assert.equal(await track(Promise.resolve("ok")), "ok");
  assert.deepEqual(seen, [false, true], "the recovery is reported");
  queuedDuringOutage.reject(lost());
  assert.ok(isUnavailable(await late), "the late query still fails as unavailable");
  assert.deepEqual(seen, [false, true], "its failure is older news than the recovery");
  await assert.rejects(track(Promise.reject(lost())));
  assert.deepEqual(seen, [false, true, false], "a failure that starts after the recovery is news");
});

Deno.test("availability: a query from before the outage that succeeds late does not end it", async () => {
  const seen: boolean[] = [];
  const track = availabilityTracker((up) => seen.push(up));
  const slow = deferred<number>();
  const late = track(slow.promise);
  await assert.rejects(track(Promise.reject(lost())));
  slow.resolve(1);
  assert.equal(await late, 1);
  assert.deepEqual(seen, [false]);
  await track(Promise.resolve(2));
  assert.deepEqual(seen, [false, true]);
});

Deno.test("availability: errors that are not about reaching the database change nothing", async () => {
  const seen: boolean[] = [];
  const track = availabilityTracker((up) => seen.push(up));
  const syntax = Object.assign(new Error("syntax error"), { code: "42601" });
  await assert.rejects(track(Promise.reject(syntax)), (e) => e === syntax);
  assert.deepEqual(seen, []);
});
