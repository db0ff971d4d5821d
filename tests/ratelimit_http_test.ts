import assert from "node:assert/strict";
import { createScratchDatabase, ON_POSTGRES, openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { startCutProxy } from "./support/proxy.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { json, readJson } from "../lib/http.ts";
import { type Principal, SCOPES, type Tier } from "../lib/policy.ts";
import type { SettingKey } from "../lib/settings.ts";
import { upsertSetting } from "../db/settings.ts";
import { type Db, openPostgres } from "../db/client.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";
import { checkLoginLimit } from "../routes/ratelimit.ts";
import type { Route } from "../routes/context.ts";

const tdb = await openTestDb();
const T0 = Date.UTC(2026, 4, 27, 12, 0, 0);
const QUOTA_TYPE = "https://iana.org/assignments/http-problem-types#quota-exceeded";

// Test-only routes, one per limit class, under a fixed clock so the window arithmetic is
// exact, with a header-named principal so subjects stay stable across steps. The limiter
// and the database are real. The same limits through the real routes with real API keys,
// access tokens and ops tokens: tests/e2e_test.ts, tests/perf_test.ts and
// soak/multi_instance_test.ts.
const ROUTES: Route[] = [
  {
    method: "GET",
    path: "/test/data",
    auth: ["jwt", "apiKey"],
    tier: "sharp",
    limit: "data",
    summary: "data",
    handler: () => json({ ok: true }),
  },
  {
    method: "GET",
    path: "/test/ops",
    auth: ["opsToken", "jwt"],
    scope: "ops:read",
    limit: "ops",
    summary: "ops",
    handler: () => json({ ok: true }),
  },
  {
    method: "POST",
    path: "/test/login",
    auth: [],
    limit: "login",
    summary: "login",
    handler: async (ctx) => {
      const body = await readJson(ctx.req) as { email: string };
      await checkLoginLimit(ctx, body.email);
      return json({ ok: true });
    },
  },
];

/** Test authenticator: `x-test-principal: <kind> <id> <tier|->`, e.g. `apiKey 7 sharp`. */
async function testPrincipal(req: Request): Promise<Principal | null> {
  const raw = req.headers.get("x-test-principal");
  if (!raw) return null;
  const [kind, id, tier] = raw.split(" ") as [Principal["kind"], string, string];
  const ops = kind === "opsToken";
  return await Promise.resolve({
    kind,
    subject: ops ? `ops:${id}` : `user:${id}`,
    userId: ops ? null : id,
    tier: ops ? null : tier as Tier,
    scopes: ops ? ["ops:read"] : tier === "admin" ? SCOPES : [],
    credentialId: `${kind}-${id}`,
  });
}

interface Harness {
  server: TestServer;
  clock: { now: number };
  get(path: string, principal?: string): Promise<Response>;
  set(key: SettingKey, value: number): Promise<void>;
}

async function withServer(
  fn: (h: Harness) => Promise<void>,
  db: Db = tdb.db,
  env: Record<string, string> = {},
): Promise<void> {
  const clock = { now: T0 };
  const server = await startTestServer(db, env, () => clock.now, ROUTES);
  server.running.deps.authenticate = testPrincipal;
  const h: Harness = {
    server,
    clock,
    get: (path, principal) =>
      fetch(server.url(path), { headers: principal ? { "x-test-principal": principal } : {} }),
    async set(key, value) {
      await upsertSetting(db, key, value, "test");
      await server.running.deps.settings.refresh();
    },
  };
  try {
    await fn(h);
  } finally {
    await server.stop();
  }
}

async function statuses(responses: Promise<Response>[]): Promise<number[]> {
  return await Promise.all(responses.map(async (p) => {
    const res = await p;
    await res.body?.cancel();
    return res.status;
  }));
}

function login(h: Harness, email: string, forwardedFor?: string): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (forwardedFor) headers["x-forwarded-for"] = forwardedFor;
  return fetch(h.server.url("/test/login"), {
    method: "POST",
    headers,
    body: JSON.stringify({ email, password: "irrelevant" }),
  });
}

Deno.test(
  { ...DB_TEST, name: "GET /test/data answers 200 with RateLimit-Policy and RateLimit" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      const res = await h.get("/test/data", "apiKey 1 sharp");
      await res.body?.cancel();
      assert.equal(res.status, 200);
      assert.equal(
        res.headers.get("ratelimit-policy"),
        '"sharp-minute";q=60;w=60, "sharp-day";q=5000;w=86400',
      );
      // Counted in the 1 s slot of T0, which leaves the counted span at T0 + 61 s.
      assert.equal(res.headers.get("ratelimit"), '"sharp-minute";r=59;t=61');
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /test/data answers 429 with Retry-After once the minute is spent" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.sharp.perMinute", 3);
      for (let i = 0; i < 3; i++) {
        h.clock.now = T0 + i * 10_000;
        assert.deepEqual(await statuses([h.get("/test/data", "jwt 1 sharp")]), [200]);
      }
      h.clock.now = T0 + 20_500;
      const res = await h.get("/test/data", "jwt 1 sharp");
      const body = await assertProblem(res, 429, "quota-exceeded");
      assert.equal(body.type, QUOTA_TYPE);
      assert.deepEqual(body["violated-policies"], ["sharp-minute"]);
      // The T0 slot frees at T0 + 61 s: 40.5 s from now, rounded up.
      assert.equal(res.headers.get("retry-after"), "41");
      assert.equal(res.headers.get("ratelimit"), '"sharp-minute";r=0;t=41');
      assert.match(res.headers.get("ratelimit-policy")!, /^"sharp-minute";q=3;w=60, /);
      h.clock.now = T0 + 60_999;
      assert.deepEqual(await statuses([h.get("/test/data", "jwt 1 sharp")]), [429]);
      h.clock.now = T0 + 61_000;
      assert.deepEqual(await statuses([h.get("/test/data", "jwt 1 sharp")]), [200]);
    });
  },
);

Deno.test(
  {
    ...DB_TEST,
    name: "a remembered refusal counts Retry-After down and answers each request as its own",
  },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.sharp.perMinute", 1);
      assert.deepEqual(await statuses([h.get("/test/data", "jwt 1 sharp")]), [200]);
      // The T0 slot frees at T0 + 61 s; each answer reads the clock of its own request.
      const seen = new Set<string>();
      for (const [at, wait] of [[500, 61], [1_000, 60], [1_999, 60], [2_000, 59], [60_001, 1]]) {
        h.clock.now = T0 + at;
        const res = await h.get("/test/data", "jwt 1 sharp");
        const body = await assertProblem(res, 429, "quota-exceeded");
        assert.equal(res.headers.get("retry-after"), String(wait), `at +${at} ms`);
        assert.equal(res.headers.get("ratelimit"), `"sharp-minute";r=0;t=${wait}`);
        assert.equal(body.detail, `Rate limit sharp-minute exceeded; retry in ${wait} s`);
        assert.equal(body.requestId, res.headers.get("x-request-id"));
        seen.add(String(body.requestId));
      }
      assert.equal(seen.size, 5, "a request id per answer");
      h.clock.now = T0 + 61_000;
      assert.deepEqual(await statuses([h.get("/test/data", "jwt 1 sharp")]), [200]);
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /test/data: a user's API keys and sessions share one budget" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.sharp.perMinute", 2);
      const got = await statuses([
        h.get("/test/data", "apiKey 5 sharp"),
        h.get("/test/data", "jwt 5 sharp"),
        h.get("/test/data", "apiKey 5 sharp"),
      ]);
      assert.deepEqual(got.sort(), [200, 200, 429]);
      assert.deepEqual(await statuses([h.get("/test/data", "apiKey 6 sharp")]), [200]);
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /test/data admits exactly 50 of 200 concurrent requests" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.sharp.perMinute", 50);
      const got = await statuses(
        Array.from({ length: 200 }, () => h.get("/test/data", "apiKey 1 sharp")),
      );
      assert.equal(got.filter((s) => s === 200).length, 50);
      assert.equal(got.filter((s) => s === 429).length, 150);
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /test/data refused by the day window consumes no minute quota" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.sharp.perDay", 2);
      const got = await statuses([1, 2, 3, 4].map(() => h.get("/test/data", "jwt 1 sharp")));
      assert.deepEqual(got.sort(), [200, 200, 429, 429]);
      const res = await h.get("/test/data", "jwt 1 sharp");
      const body = await assertProblem(res, 429, "quota-exceeded");
      assert.deepEqual(body["violated-policies"], ["sharp-day"]);
      await h.set("ratelimit.sharp.perDay", 5000);
      const ok = await h.get("/test/data", "jwt 1 sharp");
      await ok.body?.cancel();
      assert.equal(ok.headers.get("ratelimit"), '"sharp-minute";r=57;t=61');
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /test/data answers 401 and 403 without consuming quota" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await assertProblem(await h.get("/test/data"), 401, "unauthorized");
      await assertProblem(await h.get("/test/data", "jwt 1 free"), 403, "forbidden");
      await assertProblem(await h.get("/test/ops", "jwt 1 sharp"), 403, "forbidden");
      const rows = await tdb.db.query("select key from ratelimit_windows");
      assert.equal(rows.length, 0);
      const res = await h.get("/test/data", "jwt 1 sharp");
      await res.body?.cancel();
      assert.equal(res.headers.get("ratelimit"), '"sharp-minute";r=59;t=61');
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /test/data for an admin is unlimited and carries no RateLimit fields" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.sharp.perMinute", 1);
      const got = await statuses([1, 2, 3].map(() => h.get("/test/data", "jwt 9 admin")));
      assert.deepEqual(got, [200, 200, 200]);
      const res = await h.get("/test/ops", "jwt 9 admin");
      await res.body?.cancel();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("ratelimit-policy"), null);
      assert.equal(res.headers.get("ratelimit"), null);
      assert.equal((await tdb.db.query("select key from ratelimit_windows")).length, 0);
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /test/ops is limited per ops token by ratelimit.ops.perMinute" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.ops.perMinute", 2);
      const got = await statuses([1, 2, 3].map(() => h.get("/test/ops", "opsToken t1 -")));
      assert.deepEqual(got.sort(), [200, 200, 429]);
      const other = await h.get("/test/ops", "opsToken t2 -");
      await other.body?.cancel();
      assert.equal(other.status, 200);
      assert.equal(other.headers.get("ratelimit-policy"), '"ops-minute";q=2;w=60');
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "a ratelimit.* change applies without restart (NOTIFY or poll, ≤ 3 s)" },
  async () => {
    await tdb.reset();
    await withServer(async (h) => {
      await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 7, "test");
      const deadline = Date.now() + 3500;
      let policy = "";
      while (Date.now() < deadline) {
        const res = await h.get("/test/data", "jwt 1 sharp");
        await res.body?.cancel();
        policy = res.headers.get("ratelimit-policy") ?? "";
        if (policy.startsWith('"sharp-minute";q=7;')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(policy, /^"sharp-minute";q=7;w=60/);
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "checkLoginLimit() locks out an (email, IP) after the configured attempts" },
  async (t) => {
    await tdb.reset();
    await withServer(async (h) => {
      await h.set("ratelimit.login.perEmailIp", 3);
      await h.set("ratelimit.login.perIp", 5);
      await t.step("3 attempts per email, case-insensitive", async () => {
        const got = await statuses(["a@x.io", "A@X.io", "a@x.io"].map((e) => login(h, e)));
        assert.deepEqual(got, [200, 200, 200]);
        const res = await login(h, "a@x.IO");
        const body = await assertProblem(res, 429, "quota-exceeded");
        assert.deepEqual(body["violated-policies"], ["login-email-ip"]);
        assert.equal(res.headers.get("retry-after"), "915"); // 15 s slots: T0 + 15 min + 15 s
        assert.match(
          res.headers.get("ratelimit-policy")!,
          /^"login-email-ip";q=3;w=900, "login-ip";q=5;w=900$/,
        );
      });
      await t.step("another email from the same IP until the IP's 5", async () => {
        assert.deepEqual(await statuses([login(h, "b@x.io"), login(h, "c@x.io")]), [200, 200]);
        const body = await assertProblem(await login(h, "d@x.io"), 429, "quota-exceeded");
        assert.deepEqual(body["violated-policies"], ["login-ip"]);
      });
      await t.step("the window frees after 15 minutes", async () => {
        h.clock.now = T0 + 15 * 60_000 + 15_000;
        assert.deepEqual(await statuses([login(h, "a@x.io")]), [200]);
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "checkLoginLimit() keys by socket address unless TRUST_PROXY is set" },
  async (t) => {
    await t.step("TRUST_PROXY unset: X-Forwarded-For cannot dodge the per-IP limit", async () => {
      await tdb.reset();
      await withServer(async (h) => {
        await h.set("ratelimit.login.perIp", 2);
        const got = await statuses(
          ["1.1.1.1", "2.2.2.2", "3.3.3.3"].map((ip, i) => login(h, `u${i}@x.io`, ip)),
        );
        assert.deepEqual(got.sort(), [200, 200, 429]);
      });
    });
    await t.step("TRUST_PROXY=1: each forwarded client has its own budget", async () => {
      await tdb.reset();
      await withServer(
        async (h) => {
          await h.set("ratelimit.login.perIp", 2);
          const got = await statuses(
            ["1.1.1.1", "2.2.2.2", "3.3.3.3"].map((ip, i) => login(h, `u${i}@x.io`, ip)),
          );
          assert.deepEqual(got, [200, 200, 200]);
        },
        tdb.db,
        { TRUST_PROXY: "1" },
      );
    });
  },
);

// PGlite lives in the process and cannot go down; this needs a PostgreSQL to take away.
Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "GET /test/data answers 503 with the database down, and logs it once",
}, async () => {
  const url = new URL(await createScratchDatabase());
  const proxy = startCutProxy({ hostname: url.hostname, port: Number(url.port) });
  url.port = String(proxy.port);
  const db = openPostgres(url.toString());
  await migrate(db, await loadMigrations());
  try {
    await withServer(async (h) => {
      assert.deepEqual(await statuses([h.get("/test/data", "jwt 1 sharp")]), [200]);
      proxy.down();
      for (let i = 0; i < 3; i++) {
        await assertProblem(await h.get("/test/data", "jwt 1 sharp"), 503, "database-unavailable");
      }
      const said = h.server.logs.filter((l) => String(l.msg).startsWith("rate limiter: database"));
      assert.equal(said.length, 1, JSON.stringify(said));
      proxy.up(); // so the pool closes at once
    }, db);
  } finally {
    await db.close();
    proxy.close();
  }
});
