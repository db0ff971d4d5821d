import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { createApiKey, createUser } from "./support/fixtures.ts";
import { insertPickRow } from "./support/data_fixtures.ts";
import { createBatcher } from "../lib/batch.ts";
import {
  chargeRateLimitGroups,
  chargeRateLimitWindows,
  chargeRateLimitWindowsBatch,
} from "../db/ratelimits.ts";
import { usage } from "../lib/ratelimit.ts";
import { upsertSetting } from "../db/settings.ts";
import { dateInZone } from "../lib/dates.ts";

const tdb = await openTestDb();
const T0 = Date.UTC(2026, 4, 27, 12, 0, 0);
const TODAY = "/api/v1/data/picks/today";

Deno.test("createBatcher() runs the items of one tick in one call, in order", async () => {
  const calls: number[][] = [];
  const double = createBatcher((xs: number[]) => {
    calls.push(xs);
    return Promise.resolve(xs.map((x) => x * 2));
  });
  const out = await Promise.all([1, 2, 3].map(double));
  assert.deepEqual(out, [2, 4, 6]);
  assert.deepEqual(calls, [[1, 2, 3]]);
});

Deno.test("createBatcher() never lets an item join a call already running", async () => {
  const started: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const run = createBatcher(async (xs: number[]) => {
    started.push(xs);
    await gate;
    return xs;
  });
  const first = run(1);
  await new Promise((r) => setTimeout(r, 0));
  const late = [run(2), run(3)]; // arrive while the call for 1 runs: they wait for the next
  assert.deepEqual(started, [[1]]);
  release();
  assert.deepEqual(await Promise.all([first, ...late]), [1, 2, 3]);
  assert.deepEqual(started, [[1], [2, 3]]);
});

Deno.test("createBatcher() starts the next call before the finished call's callers resume", async () => {
  const events: string[] = [];
  const releases: (() => void)[] = [];
  const run = createBatcher(async (xs: number[]) => {
    events.push(`start ${xs}`);
    await new Promise<void>((r) => releases.push(r));
    return xs;
  });
  const first = run(1).then(() => events.push("resumed 1"));
  await new Promise((r) => setTimeout(r, 0));
  const second = run(2).then(() => events.push("resumed 2"));
  releases[0]();
  await first;
  // The call for 2 was already on its way when the caller of 1 went on with its work.
  assert.deepEqual(events, ["start 1", "start 2", "resumed 1"]);
  releases[1]();
  await second;
  assert.deepEqual(events.at(-1), "resumed 2");
});

Deno.test("createBatcher() rejects every item of a failed call, then keeps working", async () => {
  let fail = true;
  const run = createBatcher((xs: number[]) =>
    fail ? Promise.reject(new Error("down")) : Promise.resolve(xs)
  );
  const results = await Promise.allSettled([run(1), run(2)]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  fail = false;
  assert.equal(await run(3), 3);
});

Deno.test(
  { ...DB_TEST, name: "chargeRateLimitWindowsBatch() admits exactly the room left, in order" },
  async () => {
    await tdb.reset();
    const minute = { name: "m", quota: 5, windowSeconds: 60 };
    const day = { name: "d", quota: 100, windowSeconds: 86_400 };
    const charges = [{ key: "m:u", policy: minute }, { key: "d:u", policy: day }];
    await chargeRateLimitWindows(tdb.db, charges, T0);
    await chargeRateLimitWindows(tdb.db, charges, T0);
    const out = await chargeRateLimitWindowsBatch(tdb.db, charges, T0 + 10, 6);
    assert.deepEqual(out.map((r) => r.admitted), [true, true, true, false, false, false]);
    const remaining = out.map((r) => usage(minute, r.states[0], T0 + 10, r.unseen).remaining);
    assert.deepEqual(remaining, [2, 1, 0, 0, 0, 0]);
    // The same as six checks one after another: the refused three charged no window.
    const next = await chargeRateLimitWindows(tdb.db, charges, T0 + 20);
    assert.equal(next.admitted, false);
    assert.equal(usage(day, next.states[1], T0 + 20).remaining, 95);
  },
);

Deno.test(
  { ...DB_TEST, name: "chargeRateLimitGroups() charges each group of one statement alone" },
  async () => {
    await tdb.reset();
    const minute = { name: "m", quota: 3, windowSeconds: 60 };
    const a = [{ key: "m:a", policy: minute }];
    const b = [{ key: "m:b", policy: { ...minute, quota: 1 } }];
    const out = await chargeRateLimitGroups(
      tdb.db,
      [{ charges: a, n: 4 }, { charges: b, n: 2 }],
      T0,
    );
    assert.deepEqual(out.map((g) => g.map((r) => r.admitted)), [
      [true, true, true, false],
      [true, false],
    ]);
    assert.deepEqual(await chargeRateLimitGroups(tdb.db, [], T0), []);
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /data/picks/today admits exactly the quota of 40 concurrent requests" },
  async () => {
    await tdb.reset();
    await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 7, "test");
    const server = await startTestServer(tdb.db, { WORKER: "off" });
    try {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const keys = [await createApiKey(tdb.db, user.id), await createApiKey(tdb.db, user.id)];
      const statuses = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const res = await fetch(server.url(TODAY), { headers: { "x-api-key": keys[i % 2] } });
          await res.body?.cancel();
          return res.status;
        }),
      );
      assert.equal(statuses.filter((s) => s === 200).length, 7);
      assert.equal(statuses.filter((s) => s === 429).length, 33);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /data/picks/today serves new picks at once on every instance" },
  async () => {
    await tdb.reset();
    const a = await startTestServer(tdb.db, { WORKER: "off" });
    const b = await startTestServer(tdb.db, { WORKER: "off" });
    try {
      await upsertSetting(tdb.db, "data.timezone", "UTC", "test");
      await a.running.deps.settings.refresh();
      await b.running.deps.settings.refresh();
      const user = await createUser(tdb.db, { tier: "sharp" });
      const headers = { "x-api-key": await createApiKey(tdb.db, user.id) };
      const today = dateInZone(Date.now(), "UTC");
      await insertPickRow(tdb.db, { date: today, player: "First" });
      const players = async (base: typeof a) => {
        const res = await fetch(base.url(TODAY), { headers });
        assert.equal(res.status, 200);
        return (await res.json()).items.map((p: { player: string }) => p.player);
      };
      assert.deepEqual(await players(a), ["First"]);
      assert.deepEqual(await players(b), ["First"]);
      await insertPickRow(tdb.db, { date: today, player: "Second" }); // no NOTIFY needed
      assert.deepEqual(await players(a), ["Second", "First"]);
      assert.deepEqual(await players(b), ["Second", "First"]);
      await tdb.db.query("delete from picks where player = 'First'");
      assert.deepEqual(await players(b), ["Second"]);
    } finally {
      await a.stop();
      await b.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /data/picks/today refuses a key revoked during a burst at once" },
  async () => {
    await tdb.reset();
    await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 1000, "test");
    const server = await startTestServer(tdb.db, { WORKER: "off" });
    try {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const headers = { "x-api-key": await createApiKey(tdb.db, user.id) };
      const get = async () => {
        const res = await fetch(server.url(TODAY), { headers });
        await res.body?.cancel();
        return res.status;
      };
      const burst = Array.from({ length: 20 }, get);
      await tdb.db.query("update api_keys set revoked_at = now() where user_id = $1", [user.id]);
      await Promise.all(burst); // requests already under way may pass; none sent later does
      await assertProblem(await fetch(server.url(TODAY), { headers }), 401, "invalid-token");
      assert.equal(await get(), 401);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  {
    ...DB_TEST,
    name: "GET /data/picks/today keeps refusing until a slot frees or the quota rises",
  },
  async () => {
    await tdb.reset();
    await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 2, "test");
    let t = T0;
    const server = await startTestServer(tdb.db, { WORKER: "off" }, () => t);
    try {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const headers = { "x-api-key": await createApiKey(tdb.db, user.id) };
      const get = async () => {
        const res = await fetch(server.url(TODAY), { headers });
        await res.body?.cancel();
        return [res.status, res.headers.get("ratelimit")];
      };
      assert.deepEqual([await get(), await get()].map((r) => r[0]), [200, 200]);
      assert.deepEqual(await get(), [429, '"sharp-minute";r=0;t=61']);
      t = T0 + 30_000;
      assert.deepEqual(await get(), [429, '"sharp-minute";r=0;t=31']);
      t = T0 + 61_000; // the first slot frees as announced
      assert.equal((await get())[0], 200);
      assert.equal((await get())[0], 200);
      assert.equal((await get())[0], 429);
      await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 3, "test");
      await server.running.deps.settings.refresh();
      assert.equal((await get())[0], 200);
    } finally {
      await server.stop();
    }
  },
);
