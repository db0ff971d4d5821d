import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createUser } from "./support/fixtures.ts";
import { PROBE_ROUTES } from "./support/probe_routes.ts";
import { ROUTES } from "../routes/mod.ts";
import { rotateSigningKey } from "../db/signing_keys.ts";

const tdb = await openTestDb();
const USERS = "/api/v1/admin/users";

async function withServer(fn: (s: TestServer) => Promise<void>, env: Record<string, string> = {}) {
  await tdb.reset();
  const server = await startTestServer(tdb.db, env, undefined, [...ROUTES, ...PROBE_ROUTES]);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

function patch(s: TestServer, jwt: string, id: string, body: unknown) {
  return fetch(s.url(`${USERS}/${id}`), {
    method: "PATCH",
    headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/admin/users lists users for admins only" },
  async (t) => {
    await withServer(async (s) => {
      const admin = await createUser(tdb.db, { tier: "admin" });
      for (let i = 0; i < 3; i++) await createUser(tdb.db, { tier: "free" });
      const jwt = await accessTokenFor(s, admin);
      await t.step("200 paginated, newest first, without password hashes", async () => {
        const res = await fetch(s.url(`${USERS}?limit=3`), {
          headers: { authorization: `Bearer ${jwt}` },
        });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.items.length, 3);
        assert.ok(body.nextCursor);
        assert.ok(!JSON.stringify(body).includes("scrypt"));
        const rest = await (await fetch(s.url(`${USERS}?limit=3&cursor=${body.nextCursor}`), {
          headers: { authorization: `Bearer ${jwt}` },
        })).json();
        assert.deepEqual(rest.items.map((u: { id: string }) => u.id), [admin.id]);
      });
      await t.step("400 for a bad cursor, 422 for a bad limit", async () => {
        const h = { authorization: `Bearer ${jwt}` };
        await assertProblem(
          await fetch(s.url(`${USERS}?cursor=zz`), { headers: h }),
          400,
          "bad-request",
        );
        await assertProblem(
          await fetch(s.url(`${USERS}?limit=0`), { headers: h }),
          422,
          "validation-failed",
        );
      });
      await t.step("403 for a sharp user", async () => {
        const sharp = await accessTokenFor(s, await createUser(tdb.db, { tier: "sharp" }));
        const res = await fetch(s.url(USERS), { headers: { authorization: `Bearer ${sharp}` } });
        await assertProblem(res, 403, "forbidden");
      });
    });
  },
);

Deno.test({ ...DB_TEST, name: "PATCH /api/v1/admin/users/{id} answers each status" }, async (t) => {
  await withServer(async (s) => {
    const admin = await createUser(tdb.db, { tier: "admin" });
    const jwt = await accessTokenFor(s, admin);
    const user = await createUser(tdb.db, { tier: "sharp" });
    const userJwt = await accessTokenFor(s, user);
    const key = await createApiKey(tdb.db, user.id);
    const probe = (headers: HeadersInit) => fetch(s.url("/api/v1/data/probe"), { headers });
    await t.step("a downgrade applies to the very next request, JWT and key alike", async () => {
      const res = await patch(s, jwt, user.id, { tier: "pro" });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).tier, "pro");
      // The JWT still says "sharp"; policy reads the tier now.
      await assertProblem(await probe({ authorization: `Bearer ${userJwt}` }), 403, "forbidden");
      await assertProblem(await probe({ "x-api-key": key }), 403, "forbidden");
      const up = await patch(s, jwt, user.id, { tier: "sharp" });
      await up.body?.cancel();
      const ok = await probe({ "x-api-key": key });
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
    });
    await t.step("disabling ends sessions and stops keys at once", async () => {
      const res = await patch(s, jwt, user.id, { disabled: true });
      assert.equal((await res.json()).disabled, true);
      await assertProblem(
        await probe({ authorization: `Bearer ${userJwt}` }),
        401,
        "invalid-token",
      );
      await assertProblem(await probe({ "x-api-key": key }), 401, "invalid-token");
      const [row] = await tdb.db.query<{ open: number }>(
        "select count(*)::int as open from sessions where user_id = $1 and revoked_at is null",
        [user.id],
      );
      assert.equal(row.open, 0);
    });
    await t.step("422 for an unknown tier, a non-boolean or an empty change", async () => {
      await assertProblem(await patch(s, jwt, user.id, { tier: "gold" }), 422, "validation-failed");
      await assertProblem(
        await patch(s, jwt, user.id, { disabled: "yes" }),
        422,
        "validation-failed",
      );
      await assertProblem(await patch(s, jwt, user.id, {}), 422, "validation-failed");
    });
    await t.step("422 when an admin would demote or disable themselves", async () => {
      await assertProblem(
        await patch(s, jwt, admin.id, { tier: "free" }),
        422,
        "validation-failed",
      );
    });
    await t.step("404 for an unknown or malformed id", async () => {
      await assertProblem(
        await patch(s, jwt, crypto.randomUUID(), { tier: "pro" }),
        404,
        "not-found",
      );
      await assertProblem(await patch(s, jwt, "x", { tier: "pro" }), 404, "not-found");
    });
  });
});

Deno.test({
  ...DB_TEST,
  name: "ADMIN_EMAIL and ADMIN_PASSWORD create the first admin on an empty database",
}, async () => {
  const env = { ADMIN_EMAIL: "root@example.com", ADMIN_PASSWORD: "bootstrap-password-1" };
  await withServer(async (s) => {
    const rows = await tdb.db.query<{ email: string; tier: string }>(
      "select email, tier from users",
    );
    assert.deepEqual(rows.map((r) => [r.email, r.tier]), [["root@example.com", "admin"]]);
    const res = await fetch(s.url("/api/v1/auth/login"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "root@example.com", password: "bootstrap-password-1" }),
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.ok(!s.rawLogs.some((l) => l.includes("bootstrap-password-1")));
  }, env);
});

Deno.test({
  ...DB_TEST,
  name: "the start says how to get a first admin, and when ADMIN_EMAIL is ignored",
}, async () => {
  const msgs = (s: TestServer) => s.logs.map((l) => `${l.level} ${l.msg}`);
  await withServer((s) => {
    assert.ok(
      msgs(s).includes(
        "warn no users yet: set ADMIN_EMAIL and ADMIN_PASSWORD, or run `proplab create-admin --email …`",
      ),
    );
    return Promise.resolve();
  });
  await tdb.reset();
  await createUser(tdb.db, { tier: "sharp" });
  const env = { ADMIN_EMAIL: "root@example.com", ADMIN_PASSWORD: "bootstrap-password-1" };
  const s = await startTestServer(tdb.db, env);
  try {
    assert.ok(msgs(s).includes("info ADMIN_EMAIL ignored: the database has users already"));
    assert.ok(!msgs(s).some((m) => m.includes("no users yet")));
    const rows = await tdb.db.query("select 1 from users where email = 'root@example.com'");
    assert.equal(rows.length, 0);
  } finally {
    await s.stop();
  }
});

Deno.test({ ...DB_TEST, name: "rotating the signing key logs nobody out" }, async () => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "sharp" });
    const before = await accessTokenFor(s, user);
    const oldKid = s.running.deps.identity!.keyring.currentKid();
    const newKid = await rotateSigningKey(tdb.db);
    await s.running.deps.identity!.keyring.reload();
    assert.equal(s.running.deps.identity!.keyring.currentKid(), newKid);
    assert.notEqual(oldKid, newKid);
    const after = await accessTokenFor(s, user);
    for (const jwt of [before, after]) {
      const res = await fetch(s.url("/api/v1/data/probe"), {
        headers: { authorization: `Bearer ${jwt}` },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
  });
});

Deno.test(
  { ...DB_TEST, name: "JWT_SECRET gives a fixed key whose kid does not reveal it" },
  async () => {
    const secret = "s".repeat(40);
    await withServer(async (s) => {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const jwt = await accessTokenFor(s, user);
      const header = JSON.parse(atob(jwt.split(".")[0].replaceAll("-", "+").replaceAll("_", "/")));
      assert.match(header.kid, /^env-[0-9a-f]{16}$/);
      const [row] = await tdb.db.query<{ n: number }>(
        "select count(*)::int as n from signing_keys",
      );
      assert.equal(row.n, 0);
    }, { JWT_SECRET: secret });
  },
);
