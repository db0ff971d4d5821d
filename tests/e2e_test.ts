/**
 * End to end with real credentials: the parts working together as the seeds describe —
 * login → bearer → API key → data with rate limits; ops tokens with Idempotency-Key;
 * policy refusals that consume no quota; the login lock-out on the real route.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createOpsToken, createUser } from "./support/fixtures.ts";
import { upsertSetting } from "../db/settings.ts";

const tdb = await openTestDb();
const JSON_HEADERS = { "content-type": "application/json" };

async function withServer(fn: (s: TestServer) => Promise<void>) {
  await tdb.reset();
  const server = await startTestServer(tdb.db);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

async function setSetting(s: TestServer, key: Parameters<typeof upsertSetting>[1], value: unknown) {
  await upsertSetting(tdb.db, key, value, "test");
  await s.running.deps.settings.refresh();
}

async function status(res: Response): Promise<number> {
  await res.body?.cancel();
  return res.status;
}

Deno.test(
  { ...DB_TEST, name: "seed flow: login → bearer → create API key → data with the key" },
  async () => {
    await withServer(async (s) => {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const login = await fetch(s.url("/api/v1/auth/login"), {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ email: user.email, password: user.password }),
      });
      assert.equal(login.status, 200);
      const { accessToken, tokenType, expiresIn } = await login.json();
      assert.equal(tokenType, "Bearer");
      assert.equal(expiresIn, 900);
      assert.match(login.headers.get("set-cookie") ?? "", /^refreshToken=.*HttpOnly/);

      const created = await fetch(s.url("/api/v1/me/api-keys"), {
        method: "POST",
        headers: { ...JSON_HEADERS, authorization: `Bearer ${accessToken}` },
        body: JSON.stringify({ name: "my-notebook" }),
      });
      assert.equal(created.status, 201);
      const { rawKey } = await created.json();
      assert.match(rawKey, /^npl_/);

      const picks = await fetch(s.url("/api/v1/data/picks/today"), {
        headers: { "x-api-key": rawKey },
      });
      assert.equal(picks.status, 200);
      assert.match(picks.headers.get("ratelimit-policy") ?? "", /"sharp-minute";q=60;w=60/);
      assert.match(picks.headers.get("ratelimit") ?? "", /r=\d+;t=\d+/);
      await picks.body?.cancel();

      const listed = await fetch(s.url("/api/v1/me/api-keys"), {
        headers: { authorization: `Bearer ${accessToken}` },
      });
      const text = await listed.text();
      assert.ok(!text.includes(rawKey), "a listing never shows the raw key");
    });
  },
);

Deno.test({
  ...DB_TEST,
  name: "data rate limit: every key of a user shares one budget; 429 problem",
}, async () => {
  await withServer(async (s) => {
    await setSetting(s, "ratelimit.sharp.perMinute", 3);
    const user = await createUser(tdb.db, { tier: "sharp" });
    const keys = [await createApiKey(tdb.db, user.id), await createApiKey(tdb.db, user.id)];
    const jwt = await accessTokenFor(s, user);
    const creds: Record<string, string>[] = [{ "x-api-key": keys[0] }, { "x-api-key": keys[1] }, {
      authorization: `Bearer ${jwt}`,
    }];
    for (const headers of creds) {
      assert.equal(await status(await fetch(s.url("/api/v1/data/picks/today"), { headers })), 200);
    }
    const refused = await fetch(s.url("/api/v1/data/picks/today"), { headers: creds[0] });
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    const body = await assertProblem(refused, 429, "quota-exceeded");
    assert.equal(body.type, "https://iana.org/assignments/http-problem-types#quota-exceeded");
    assert.deepEqual(body["violated-policies"], ["sharp-minute"]);
  });
});

Deno.test({
  ...DB_TEST,
  name: "401 and 403 consume no quota; a tier change applies on the next request",
}, async () => {
  await withServer(async (s) => {
    await setSetting(s, "ratelimit.sharp.perMinute", 2);
    const user = await createUser(tdb.db, { tier: "pro" });
    const key = await createApiKey(tdb.db, user.id);
    const headers = { "x-api-key": key };
    for (let i = 0; i < 5; i++) {
      await assertProblem(
        await fetch(s.url("/api/v1/data/picks/today"), { headers }),
        403,
        "forbidden",
      );
    }
    await tdb.db.query("update users set tier = 'sharp' where id = $1", [user.id]);
    assert.equal(await status(await fetch(s.url("/api/v1/data/picks/today"), { headers })), 200);
    assert.equal(await status(await fetch(s.url("/api/v1/data/picks/today"), { headers })), 200);
    assert.equal(await status(await fetch(s.url("/api/v1/data/picks/today"), { headers })), 429);
    await tdb.db.query("update users set tier = 'free' where id = $1", [user.id]);
    await assertProblem(
      await fetch(s.url("/api/v1/data/picks/today"), { headers }),
      403,
      "forbidden",
    );
  });
});

Deno.test({
  ...DB_TEST,
  name: "seed ops-token request sent twice with one Idempotency-Key creates one token",
}, async () => {
  await withServer(async (s) => {
    const admin = await createUser(tdb.db, { tier: "admin" });
    const jwt = await accessTokenFor(s, admin);
    const send = () =>
      fetch(s.url("/api/v1/ops/tokens"), {
        method: "POST",
        headers: {
          ...JSON_HEADERS,
          authorization: `Bearer ${jwt}`,
          "idempotency-key": "score-day-2026-05-27-001",
        },
        body: JSON.stringify({
          name: "monitoring",
          scopes: ["ops:read"],
          expiresAt: "2099-04-15T12:00:00Z",
        }),
      });
    const first = await send();
    const firstBody = await first.text();
    assert.equal(first.status, 201, firstBody);
    const second = await send();
    assert.equal(second.status, 201);
    assert.equal(second.headers.get("idempotent-replayed"), "true");
    assert.equal(await second.text(), firstBody);
    const rows = await tdb.db.query<{ n: number }>("select count(*)::int as n from ops_tokens");
    assert.equal(rows[0].n, 1);

    const { token } = JSON.parse(firstBody);
    const health = await fetch(s.url("/api/v1/ops/health"), {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(await status(health), 200);
    const config = await fetch(s.url("/api/v1/ops/config"), {
      headers: { authorization: `Bearer ${token}` },
    });
    await assertProblem(config, 403, "forbidden");
    const data = await fetch(s.url("/api/v1/data/picks/today"), {
      headers: { authorization: `Bearer ${token}` },
    });
    await assertProblem(data, 403, "forbidden");
  });
});

Deno.test({
  ...DB_TEST,
  name: "an ops token with ops:config changes a limit that applies without restart",
}, async () => {
  await withServer(async (s) => {
    const token = await createOpsToken(tdb.db, ["ops:config"]);
    const put = await fetch(s.url("/api/v1/ops/config/ratelimit.sharp.perMinute"), {
      method: "PUT",
      headers: { ...JSON_HEADERS, authorization: `Bearer ${token}` },
      body: JSON.stringify({ value: 1 }),
    });
    assert.equal(await status(put), 200);
    const user = await createUser(tdb.db, { tier: "sharp" });
    const headers = { "x-api-key": await createApiKey(tdb.db, user.id) };
    const deadline = Date.now() + 3000;
    let refusedAt = 0;
    while (Date.now() < deadline && refusedAt === 0) {
      const res = await fetch(s.url("/api/v1/data/picks/today"), { headers });
      if ((await status(res)) === 429) refusedAt = Date.now();
    }
    assert.ok(refusedAt > 0, "the new limit of 1 per minute took effect within 3 s");
  });
});

Deno.test(
  { ...DB_TEST, name: "POST /auth/login locks out after the configured attempts" },
  async () => {
    await withServer(async (s) => {
      await setSetting(s, "ratelimit.login.perEmailIp", 2);
      const attempt = () =>
        fetch(s.url("/api/v1/auth/login"), {
          method: "POST",
          headers: JSON_HEADERS,
          body: JSON.stringify({ email: "victim@example.com", password: "wrong-password-1" }),
        });
      await assertProblem(await attempt(), 401, "unauthorized");
      await assertProblem(await attempt(), 401, "unauthorized");
      const locked = await attempt();
      assert.ok(Number(locked.headers.get("retry-after")) > 0);
      await assertProblem(locked, 429, "quota-exceeded");
    });
  },
);

Deno.test({
  ...DB_TEST,
  name: "pipeline flow: ops token queues ingest → settle → score-day; an API key reads the score",
}, async () => {
  await withServer(async (s) => {
    const ops = await createOpsToken(tdb.db, ["ops:read", "ops:commands"]);
    const auth = { authorization: `Bearer ${ops}` };
    const date = "2026-05-27";
    const commands = [
      {
        type: "ingest",
        params: {
          date,
          picks: [
            { player: "Jalen Brunson", market: "points", line: 27.5, side: "over", odds: -115 },
            { player: "Tyrese Haliburton", market: "assists", line: 9.5, side: "over", odds: 120 },
            { player: "Pascal Siakam", market: "rebounds", line: 7, side: "under", odds: -110 },
            { player: "Josh Hart", market: "pra", line: 25.5, side: "over", odds: 105 },
          ],
          results: [
            { player: "Jalen Brunson", market: "points", value: 31 },
            { player: "Tyrese Haliburton", market: "assists", value: 8 },
            { player: "Pascal Siakam", market: "rebounds", value: 7 },
          ],
        },
      },
      { type: "settle", params: { date } },
      { type: "score-day", params: { date } },
    ];
    for (const [i, command] of commands.entries()) {
      const send = () =>
        fetch(s.url("/api/v1/ops/commands"), {
          method: "POST",
          headers: { ...JSON_HEADERS, ...auth, "idempotency-key": `flow-${date}-${i}` },
          body: JSON.stringify(command),
        });
      const queued = await send();
      assert.equal(queued.status, 202);
      const job = await queued.json();
      assert.equal(queued.headers.get("location"), `/api/v1/ops/jobs/${job.id}`);
      const again = await send();
      assert.equal(again.headers.get("idempotent-replayed"), "true");
      assert.equal((await again.json()).id, job.id);
      const deadline = Date.now() + 15_000;
      let state = job.state;
      while (!["succeeded", "failed", "cancelled"].includes(state) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        const res = await fetch(s.url(`/api/v1/ops/jobs/${job.id}`), { headers: auth });
        state = (await res.json()).state;
      }
      assert.equal(state, "succeeded", `${command.type} finished`);
    }
    const jobs = await tdb.db.query<{ n: number }>("select count(*)::int as n from jobs");
    assert.equal(jobs[0].n, 3, "each Idempotency-Key queued one job");

    const user = await createUser(tdb.db, { tier: "sharp" });
    const key = await createApiKey(tdb.db, user.id);
    const res = await fetch(s.url(`/api/v1/data/scores?date=${date}`), {
      headers: { "x-api-key": key },
    });
    assert.equal(res.status, 200);
    const score = await res.json();
    // Hand-computed: win at -115 pays 100/115; loss −1; push and void 0.
    assert.deepEqual(
      [score.wins, score.losses, score.pushes, score.voids, score.units, score.roi],
      [1, 1, 1, 1, -0.1304, -0.0652],
    );
  });
});
