import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { chargeRateLimitWindows, deleteExpiredRateLimitWindows } from "../db/ratelimits.ts";
import { startRateLimitPruner } from "../routes/ratelimit.ts";
import { createLogger } from "../lib/log.ts";
import { decide, emptyWindow, type Policy, type WindowState } from "../lib/ratelimit.ts";

const tdb = await openTestDb();
const T0 = Date.UTC(2026, 4, 27, 12, 0, 0);
const MINUTE: Policy = { name: "x-minute", quota: 10, windowSeconds: 60 };
const DAY: Policy = { name: "x-day", quota: 3, windowSeconds: 86_400 };

async function storedCount(key: string): Promise<number> {
  const rows = await tdb.db.query<{ n: number }>(
    "select coalesce((select sum(c)::int from unnest(counts) c), 0) as n from ratelimit_windows where key = $1",
    [key],
  );
  return rows.length ? rows[0].n : 0;
}

Deno.test({ ...DB_TEST, name: "chargeRateLimitWindows() agrees with decide()" }, async () => {
  await tdb.reset();
  const minute = { ...MINUTE, quota: 4 };
  const day = { ...DAY, quota: 25 };
  const charges = [{ key: "m:u1", policy: minute }, { key: "d:u1", policy: day }];
  let model: WindowState[] = [emptyWindow(minute, T0), emptyWindow(day, T0)];
  let seed = 42;
  let t = T0;
  for (let i = 0; i < 120; i++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    t += seed % 9000; // 0–9 s apart: crosses slot and minute boundaries, fills the day
    const want = decide([{ policy: minute, state: model[0] }, { policy: day, state: model[1] }], t);
    const got = await chargeRateLimitWindows(tdb.db, charges, t);
    assert.equal(got.admitted, want.admitted, `check ${i} at +${t - T0} ms`);
    assert.deepEqual(got.states, want.states, `state after check ${i}`);
    model = want.states;
  }
});

Deno.test(
  { ...DB_TEST, name: "chargeRateLimitWindows() refused by one window consumes none" },
  async () => {
    await tdb.reset();
    const charges = [{ key: "m:u2", policy: MINUTE }, { key: "d:u2", policy: DAY }];
    const flags = [];
    for (let i = 0; i < 6; i++) {
      flags.push((await chargeRateLimitWindows(tdb.db, charges, T0 + i)).admitted);
    }
    assert.deepEqual(flags, [true, true, true, false, false, false]);
    assert.equal(await storedCount("m:u2"), 3, "the minute window kept only admitted requests");
    assert.equal(await storedCount("d:u2"), 3);
  },
);

Deno.test(
  { ...DB_TEST, name: "chargeRateLimitWindows() admits exactly 50 of 200 concurrent checks" },
  async () => {
    await tdb.reset();
    const policy = { ...MINUTE, quota: 50 };
    const results = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) => chargeRateLimitWindows(tdb.db, [{ key: "m:u3", policy }], T0 + i),
      ),
    );
    assert.equal(results.filter((r) => r.admitted).length, 50);
    assert.equal(await storedCount("m:u3"), 50);
  },
);

Deno.test(
  { ...DB_TEST, name: "deleteExpiredRateLimitWindows() removes only rows past their window" },
  async () => {
    await tdb.reset();
    await chargeRateLimitWindows(tdb.db, [{ key: "m:old", policy: MINUTE }], T0);
    await chargeRateLimitWindows(tdb.db, [{ key: "d:old", policy: DAY }], T0);
    await chargeRateLimitWindows(tdb.db, [{ key: "m:new", policy: MINUTE }], T0 + 50_000);
    // At T0 + 61 s the minute window of T0 is empty; T0 + 50 s and the day are not.
    assert.equal(await deleteExpiredRateLimitWindows(tdb.db, T0 + 60_999), 0);
    assert.equal(await deleteExpiredRateLimitWindows(tdb.db, T0 + 61_001), 1);
    const rows = await tdb.db.query<{ key: string }>(
      "select key from ratelimit_windows order by key",
    );
    assert.deepEqual(rows.map((r) => r.key), ["d:old", "m:new"]);
  },
);

Deno.test(
  { ...DB_TEST, name: "startRateLimitPruner() deletes expired rows in the background" },
  async () => {
    await tdb.reset();
    await chargeRateLimitWindows(tdb.db, [{ key: "m:gone", policy: MINUTE }], T0);
    const logs: string[] = [];
    const pruner = startRateLimitPruner(
      tdb.db,
      createLogger("debug", (l) => logs.push(l)),
      () => T0 + 120_000,
      20,
    );
    try {
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && (await storedCount("m:gone")) > 0) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const rows = await tdb.db.query("select key from ratelimit_windows");
      assert.equal(rows.length, 0);
    } finally {
      await pruner.stop();
    }
  },
);

// Two OS processes with their own pools against one PostgreSQL: the count is still exact.
Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "chargeRateLimitWindows() admits exactly 50 of 2 × 100 checks from two processes",
}, async () => {
  await tdb.reset();
  const startAt = String(Date.now() + 4000);
  const spawn = () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tests/support/ratelimit_worker.ts", "m:shared", "50", "100", startAt],
      env: { DATABASE_URL: tdb.url! },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const outs = await Promise.all([spawn(), spawn()]);
  const admitted = outs.map((o) => {
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    return JSON.parse(new TextDecoder().decode(o.stdout)).admitted as number;
  });
  assert.equal(admitted[0] + admitted[1], 50, `admitted ${admitted.join(" + ")}`);
  assert.equal(await storedCount("m:shared"), 50);
});
