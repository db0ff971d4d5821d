/**
 * The request gate over HTTP: recalled credentials are checked on every request (tier
 * changes both ways, revocation), and rate-limit leases never let the database count fewer
 * requests than were admitted.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createUser, windowCount } from "./support/fixtures.ts";
import { upsertSetting } from "../db/settings.ts";

const tdb = await openTestDb();
const TODAY = "/api/v1/data/picks/today";

async function withServer(fn: (s: TestServer) => Promise<void>) {
  await tdb.reset();
  const s = await startTestServer(tdb.db, { WORKER: "off" });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

async function status(s: TestServer, headers: Record<string, string>): Promise<number> {
  const res = await fetch(s.url(TODAY), { headers });
  await res.body?.cancel();
  return res.status;
}

Deno.test(
  { ...DB_TEST, name: "a recalled credential follows its user's tier both ways at once" },
  async () => {
    await withServer(async (s) => {
      const user = await createUser(tdb.db, { tier: "pro" });
      const key = { "x-api-key": await createApiKey(tdb.db, user.id) };
      const jwt = { authorization: `Bearer ${await accessTokenFor(s, user)}` };
      for (const headers of [key, jwt]) {
        await tdb.db.query("update users set tier = 'pro' where id = $1", [user.id]);
        assert.equal(await status(s, headers), 403, "pro: no data");
        assert.equal(await status(s, headers), 403, "recalled as pro");
        await tdb.db.query("update users set tier = 'sharp' where id = $1", [user.id]);
        assert.equal(await status(s, headers), 200, "upgraded: the recalled pro is rechecked");
        assert.equal(await status(s, headers), 200);
        await tdb.db.query("update users set tier = 'pro' where id = $1", [user.id]);
        assert.equal(await status(s, headers), 403, "downgraded: the recalled sharp is stale");
        await tdb.db.query("update users set tier = 'sharp', disabled = true where id = $1", [
          user.id,
        ]);
        await assertProblem(await fetch(s.url(TODAY), { headers }), 401, "invalid-token");
        await tdb.db.query("update users set disabled = false where id = $1", [user.id]);
      }
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "a revoked recalled key is refused and charges nothing" },
  async () => {
    await withServer(async (s) => {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const headers = { "x-api-key": await createApiKey(tdb.db, user.id) };
      assert.equal(await status(s, headers), 200);
      const before = await charged(`sharp-minute:user:${user.id}`);
      await tdb.db.query("update api_keys set revoked_at = now() where user_id = $1", [user.id]);
      await assertProblem(await fetch(s.url(TODAY), { headers }), 401, "invalid-token");
      assert.equal(await charged(`sharp-minute:user:${user.id}`), before);
    });
  },
);

const charged = (key: string) => windowCount(tdb.db, key);

/** A sharp user with an API key and limits far above what a test sends: leases are granted. */
async function roomyUser(s: TestServer) {
  await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 100_000, "test");
  await upsertSetting(tdb.db, "ratelimit.sharp.perDay", 1_000_000, "test");
  await s.running.deps.settings.refresh();
  const user = await createUser(tdb.db, { tier: "sharp" });
  return { user, headers: { "x-api-key": await createApiKey(tdb.db, user.id) } };
}

Deno.test(
  { ...DB_TEST, name: "leases: the database never counts fewer requests than were admitted" },
  async () => {
    await withServer(async (s) => {
      const { user, headers } = await roomyUser(s);
      let admitted = 0;
      let held = 0;
      for (let burst = 0; burst < 8; burst++) {
        const statuses = await Promise.all(Array.from({ length: 60 }, () => status(s, headers)));
        admitted += statuses.filter((x) => x === 200).length;
        const minute = await charged(`sharp-minute:user:${user.id}`);
        const day = await charged(`sharp-day:user:${user.id}`);
        assert.ok(minute >= admitted, `minute window ${minute} < ${admitted} admitted`);
        assert.equal(day, minute, "all windows or none");
        held = Math.max(held, minute - admitted);
        // Units held beyond the requests: at most 1% of the room (1,000) per lease.
        assert.ok(minute <= admitted + 1_000, `minute window ${minute} ≫ ${admitted} admitted`);
      }
      assert.equal(admitted, 480);
      assert.ok(held > 0, "a burst this size is served partly on leases");
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "requests served on a lease report what remains without its held units" },
  async () => {
    await withServer(async (s) => {
      const { user, headers } = await roomyUser(s);
      // One request at a time: each uses one unit, so what remains can only go down. Units
      // held for a lease are not used yet; counting them would make it jump down when a
      // lease is granted and back up as its units are taken.
      const remaining: number[] = [];
      // Units held beyond the requests answered so far, the most seen after any request (a
      // lease may be used up by the last one).
      let held = 0;
      for (let i = 0; i < 300; i++) {
        const res = await fetch(s.url(TODAY), { headers });
        await res.body?.cancel();
        assert.equal(res.status, 200);
        const field = res.headers.get("ratelimit") ?? "";
        assert.match(field, /^"sharp-minute";r=\d+;t=\d+$/);
        remaining.push(Number(/r=(\d+)/.exec(field)![1]));
        const counted = await charged(`sharp-minute:user:${user.id}`);
        held = Math.max(held, counted - remaining.length);
      }
      const rises = remaining.flatMap((r, i) => i > 0 && r > remaining[i - 1] ? [i] : []);
      assert.deepEqual(
        rises,
        [],
        `remaining rose at ${rises.slice(0, 5)}: ${remaining.slice(0, 12)}`,
      );
      assert.ok(held > 0, "the requests were served on leases");
      const beyond = (await charged(`sharp-minute:user:${user.id}`)) - remaining.length;
      assert.ok(remaining.at(-1)! >= 100_000 - remaining.length - beyond);
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "leases on two instances never admit more than the quota between them" },
  async () => {
    await tdb.reset();
    await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 300, "test");
    await upsertSetting(tdb.db, "ratelimit.sharp.perDay", 1_000_000, "test");
    const a = await startTestServer(tdb.db, { WORKER: "off" });
    const b = await startTestServer(tdb.db, { WORKER: "off" });
    try {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const headers = { "x-api-key": await createApiKey(tdb.db, user.id) };
      let admitted = 0;
      let refused = 0;
      const started = Date.now();
      for (let wave = 0; wave < 8; wave++) {
        const statuses = await Promise.all(
          Array.from({ length: 60 }, (_, i) => status(i % 2 ? a : b, headers)),
        );
        admitted += statuses.filter((x) => x === 200).length;
        refused += statuses.filter((x) => x === 429).length;
      }
      assert.equal(admitted + refused, 480);
      assert.ok(admitted <= 300, `${admitted} admitted against a quota of 300`);
      // What leases can cost: units one instance still held when the other ran out, and units
      // unused when a slot ended. A lease is at most 1% of the room left (3 here), one per
      // instance at a time, used only within its 1 s slot, and none within 100 of the limit:
      // at most 2 × 3 units per second the test spanned, however slow the machine was.
      const seconds = Math.floor(Date.now() / 1000) - Math.floor(started / 1000) + 1;
      const bound = 300 - 2 * 3 * seconds;
      assert.ok(admitted >= bound, `only ${admitted} of 300 admitted in ${seconds} s`);
      assert.ok(await charged(`sharp-minute:user:${user.id}`) >= admitted);
    } finally {
      await a.stop();
      await b.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "a recalled principal is checked even where no rate limiter runs" },
  async () => {
    await withServer(async (s) => {
      s.running.deps.rateLimit = () => Promise.resolve(null); // checks nothing
      const user = await createUser(tdb.db, { tier: "sharp" });
      const headers = { "x-api-key": await createApiKey(tdb.db, user.id) };
      assert.equal(await status(s, headers), 200);
      assert.equal(await status(s, headers), 200, "recalled, then checked by app.ts");
      await tdb.db.query("update api_keys set revoked_at = now() where user_id = $1", [user.id]);
      await assertProblem(await fetch(s.url(TODAY), { headers }), 401, "invalid-token");
    });
  },
);
