import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { createUser, FIXTURE_PASSWORD, type TestUser } from "./support/fixtures.ts";
import { generateSecret, hashSecret, PREFIX } from "../lib/secrets.ts";
import { createPasswordHasher, type PasswordHasher } from "../lib/password.ts";
import { insertSession } from "../db/sessions.ts";
import { REFRESH_GRACE_MS } from "../routes/auth.ts";

const tdb = await openTestDb();
const JSON_HEADERS = { "content-type": "application/json" };
let clock = Date.now();

async function withServer(fn: (s: TestServer) => Promise<void>) {
  await tdb.reset();
  clock = Date.now();
  const server = await startTestServer(tdb.db, {}, () => clock);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

/** Wraps the server's hasher to count calls (real scrypt still runs). */
function countHasher(s: TestServer): { verify: number; hash: number } {
  const identity = s.running.deps.identity!;
  const inner: PasswordHasher = identity.passwords;
  const calls = { verify: 0, hash: 0 };
  identity.passwords = {
    hash: (p) => (calls.hash++, inner.hash(p)),
    verify: (p, h) => (calls.verify++, inner.verify(p, h)),
    needsRehash: (h) => inner.needsRehash(h),
  };
  return calls;
}

/** A session with a known refresh token, without a login (no hashing). */
async function sessionCookie(user: TestUser): Promise<string> {
  const raw = generateSecret(PREFIX.refresh);
  await insertSession(tdb.db, {
    id: crypto.randomUUID(),
    userId: user.id,
    tokenHash: hashSecret(raw),
    at: new Date(clock),
    expiresAt: new Date(clock + 30 * 86_400_000),
  });
  return raw;
}

function post(s: TestServer, path: string, body?: unknown, headers: HeadersInit = {}) {
  return fetch(s.url(path), {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

const refresh = (s: TestServer, raw: string) =>
  fetch(s.url("/api/v1/auth/refresh"), {
    method: "POST",
    headers: { cookie: `refreshToken=${raw}` },
  });

function cookieValue(res: Response): string {
  const set = res.headers.get("set-cookie") ?? "";
  return /^refreshToken=([^;]*)/.exec(set)?.[1] ?? "";
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

Deno.test({ ...DB_TEST, name: "POST /api/v1/auth/signup answers each status" }, async (t) => {
  await withServer(async (s) => {
    await t.step("201 with a free user", async () => {
      const res = await post(s, "/api/v1/auth/signup", {
        email: "New.User@Example.com",
        password: "long-enough-pw",
      });
      assert.equal(res.status, 201);
      const body = await res.json();
      assert.equal(body.tier, "free");
      assert.equal(body.email, "New.User@Example.com");
      assert.match(body.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.deepEqual(Object.keys(body).sort(), ["createdAt", "email", "id", "tier"]);
    });
    await t.step("409 for the same email in another case, without hashing", async () => {
      const calls = countHasher(s);
      const res = await post(s, "/api/v1/auth/signup", {
        email: "new.user@EXAMPLE.com",
        password: "long-enough-pw",
      });
      await assertProblem(res, 409, "conflict");
      assert.equal(calls.hash, 0, "a taken email does not take a slot of the password pool");
    });
    await t.step("422 for an invalid email and a short password", async () => {
      const res = await post(s, "/api/v1/auth/signup", { email: "nope", password: "short" });
      const body = await assertProblem(res, 422, "validation-failed");
      const pointers = (body.errors as { pointer: string }[]).map((e) => e.pointer).sort();
      assert.deepEqual(pointers, ["/email", "/password"]);
    });
    await t.step("415 and 400 for a body that is not JSON", async () => {
      await assertProblem(
        await post(s, "/api/v1/auth/signup", undefined, { "content-type": "text/plain" }),
        415,
        "unsupported-media-type",
      );
      const bad = await fetch(s.url("/api/v1/auth/signup"), {
        method: "POST",
        headers: JSON_HEADERS,
        body: "{",
      });
      await assertProblem(bad, 400, "malformed-json");
    });
    await t.step("403 when signup is switched off", async () => {
      // Written as SQL: upsertSetting's `$2::jsonb` double-encodes on postgres.js (reported).
      await tdb.db.query(
        `insert into settings (key, value, updated_by) values ('signup.enabled', 'false', 'test')`,
      );
      await s.running.deps.settings.refresh();
      const res = await post(s, "/api/v1/auth/signup", {
        email: "late@example.com",
        password: "long-enough-pw",
      });
      const body = await assertProblem(res, 403, "signup-disabled");
      assert.equal(body.title, "Signup disabled");
    });
  });
});

Deno.test({
  ...DB_TEST,
  name: "signup attempts, valid or not, count against the client IP's login-ip window",
}, async () => {
  await withServer(async (s) => {
    await tdb.db.query(
      `insert into settings (key, value, updated_by) values ('ratelimit.login.perIp', '2', 'test')`,
    );
    await s.running.deps.settings.refresh();
    const signup = (email: string, password: string) =>
      post(s, "/api/v1/auth/signup", { email, password }, {
        "idempotency-key": crypto.randomUUID(),
      });
    const first = await signup("one@example.com", "long-enough-pw");
    assert.equal(first.status, 201);
    assert.match(first.headers.get("ratelimit") ?? "", /"login-ip";r=1;/);
    await assertProblem(await signup("nope", "short"), 422, "validation-failed");
    await assertProblem(await signup("two@example.com", "long-enough-pw"), 429, "quota-exceeded");
    const rows = await tdb.db.query("select 1 from users where email = 'two@example.com'");
    assert.equal(rows.length, 0, "refused before anything was created");
    const login = await post(s, "/api/v1/auth/login", {
      email: "one@example.com",
      password: "long-enough-pw",
    });
    await assertProblem(login, 429, "quota-exceeded");
  });
});

Deno.test({ ...DB_TEST, name: "POST /api/v1/auth/login answers each status" }, async (t) => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "sharp", email: "Sharp@Example.com" });
    const calls = countHasher(s);
    let token = "";
    await t.step("200 with an access token and the refresh cookie", async () => {
      const res = await post(s, "/api/v1/auth/login", {
        email: "sharp@example.com",
        password: FIXTURE_PASSWORD,
      });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.tokenType, "Bearer");
      assert.equal(body.expiresIn, 900);
      token = body.accessToken;
      const claims = JSON.parse(
        atob(token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/")),
      );
      assert.equal(claims.sub, user.id);
      assert.equal(claims.tier, "sharp");
      assert.equal(claims.exp - claims.iat, 900);
      const cookie = res.headers.get("set-cookie") ?? "";
      assert.match(cookie, /^refreshToken=nplrt_[0-9A-Za-z]{38}; /);
      for (const attr of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth"]) {
        assert.ok(cookie.includes(attr), `${attr} in ${cookie}`);
      }
      assert.ok(cookie.includes(`Max-Age=${30 * 86400}`));
      assert.equal(res.headers.get("cache-control"), "no-store");
    });
    await t.step("the access token opens GET /api/v1/me", async () => {
      const res = await fetch(s.url("/api/v1/me"), { headers: bearer(token) });
      assert.equal(res.status, 200);
      const me = await res.json();
      assert.equal(me.id, user.id);
      assert.equal(me.tier, "sharp");
      assert.deepEqual(me.scopes, []);
    });
    await t.step("401 alike for a wrong password and an unknown email, both hashing", async () => {
      const before = calls.verify;
      const wrong = await post(s, "/api/v1/auth/login", {
        email: user.email,
        password: "wrong-password-1",
      });
      const a = await assertProblem(wrong, 401, "unauthorized");
      const unknown = await post(s, "/api/v1/auth/login", {
        email: "nobody@example.com",
        password: "wrong-password-1",
      });
      const b = await assertProblem(unknown, 401, "unauthorized");
      assert.equal(a.detail, b.detail);
      assert.equal(calls.verify - before, 2, "both failure paths ran the hasher");
      assert.match(unknown.headers.get("www-authenticate") ?? "", /^Bearer /);
    });
    await t.step("401 for a disabled user with the right password", async () => {
      const off = await createUser(tdb.db, { tier: "sharp", disabled: true });
      const res = await post(s, "/api/v1/auth/login", { email: off.email, password: off.password });
      await assertProblem(res, 401, "unauthorized");
    });
    await t.step("422 for missing fields", async () => {
      const res = await post(s, "/api/v1/auth/login", { email: "x@example.com" });
      await assertProblem(res, 422, "validation-failed");
    });
    assert.ok(!s.rawLogs.some((l) => l.includes(FIXTURE_PASSWORD) || l.includes(token)));
  });
});

Deno.test({
  ...DB_TEST,
  name: "POST /api/v1/auth/login rehashes a password hashed with older parameters",
}, async () => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "free" });
    const weak = await createPasswordHasher({ ln: 12, r: 8, p: 1 }).hash(user.password);
    await tdb.db.query("update users set password_hash = $2 where id = $1", [user.id, weak]);
    const res = await post(s, "/api/v1/auth/login", { email: user.email, password: user.password });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const [row] = await tdb.db.query<{ password_hash: string }>(
      "select password_hash from users where id = $1",
      [user.id],
    );
    assert.match(row.password_hash, /^\$scrypt\$ln=17,r=8,p=1\$/);
  });
});

Deno.test({ ...DB_TEST, name: "POST /api/v1/auth/refresh rotates the cookie" }, async (t) => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "pro" });
    const first = await sessionCookie(user);
    await t.step("200 with a new access token and a new cookie", async () => {
      const res = await refresh(s, first);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.tokenType, "Bearer");
      const next = cookieValue(res);
      assert.ok(next.startsWith("nplrt_") && next !== first);
      const me = await fetch(s.url("/api/v1/me"), { headers: bearer(body.accessToken) });
      assert.equal(me.status, 200);
      await me.body?.cancel();
    });
    await t.step("401 without a cookie", async () => {
      const res = await fetch(s.url("/api/v1/auth/refresh"), { method: "POST" });
      await assertProblem(res, 401, "unauthorized");
    });
    await t.step("401 invalid_token for a garbage cookie", async () => {
      const res = await refresh(s, "nplrt_garbage");
      assert.match(res.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
      await assertProblem(res, 401, "invalid-token");
    });
  });
});

Deno.test({
  ...DB_TEST,
  name: "POST /api/v1/auth/refresh: two tabs racing with one token both succeed",
}, async () => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "pro" });
    const raw = await sessionCookie(user);
    const answers = await Promise.all([1, 2, 3].map(() => refresh(s, raw)));
    for (const res of answers) {
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    const cookies = answers.map(cookieValue);
    assert.equal(new Set(cookies).size, 3);
    // Every successor keeps working: nobody was logged out.
    for (const c of cookies) {
      const res = await refresh(s, c);
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
  });
});

Deno.test({
  ...DB_TEST,
  name: "POST /api/v1/auth/refresh: reuse after the grace window revokes the session",
}, async () => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "pro" });
    const raw = await sessionCookie(user);
    const res1 = await refresh(s, raw);
    const { accessToken } = await res1.json();
    const successor = cookieValue(res1);
    clock += REFRESH_GRACE_MS + 1000;
    const reuse = await refresh(s, raw);
    assert.match(reuse.headers.get("set-cookie") ?? "", /^refreshToken=; Max-Age=0/);
    await assertProblem(reuse, 401, "invalid-token");
    // The whole session is gone: the successor and its access token too.
    await assertProblem(await refresh(s, successor), 401, "invalid-token");
    const me = await fetch(s.url("/api/v1/me"), { headers: bearer(accessToken) });
    await assertProblem(me, 401, "invalid-token");
    assert.ok(s.logs.some((l) => l.msg === "refresh token reuse: session revoked"));
  });
});

Deno.test({
  ...DB_TEST,
  name: "POST /api/v1/auth/refresh answers 401 after logout, disable and expiry",
}, async (t) => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "pro" });
    await t.step("logout answers 204, clears the cookie, and ends the session", async () => {
      const raw = await sessionCookie(user);
      const res1 = await refresh(s, raw);
      const { accessToken } = await res1.json();
      const current = cookieValue(res1);
      const out = await fetch(s.url("/api/v1/auth/logout"), {
        method: "POST",
        headers: { cookie: `refreshToken=${current}` },
      });
      assert.equal(out.status, 204);
      assert.match(
        out.headers.get("set-cookie") ?? "",
        /^refreshToken=; Max-Age=0; Path=\/api\/v1\/auth/,
      );
      await assertProblem(await refresh(s, current), 401, "invalid-token");
      const me = await fetch(s.url("/api/v1/me"), { headers: bearer(accessToken) });
      await assertProblem(me, 401, "invalid-token");
    });
    await t.step("logout without a cookie still answers 204", async () => {
      const out = await fetch(s.url("/api/v1/auth/logout"), { method: "POST" });
      assert.equal(out.status, 204);
    });
    await t.step("a disabled user cannot refresh", async () => {
      const raw = await sessionCookie(user);
      await tdb.db.query("update users set disabled = true where id = $1", [user.id]);
      await assertProblem(await refresh(s, raw), 401, "invalid-token");
      await tdb.db.query("update users set disabled = false where id = $1", [user.id]);
    });
    await t.step("an expired refresh token cannot refresh", async () => {
      const raw = await sessionCookie(user);
      clock += 31 * 86_400_000;
      await assertProblem(await refresh(s, raw), 401, "invalid-token");
    });
  });
});

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/me answers 401 once the access token expires" },
  async () => {
    await withServer(async (s) => {
      const user = await createUser(tdb.db, { tier: "free" });
      const res1 = await refresh(s, await sessionCookie(user));
      const { accessToken } = await res1.json();
      clock += 14 * 60_000;
      const ok = await fetch(s.url("/api/v1/me"), { headers: bearer(accessToken) });
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
      clock += 2 * 60_000;
      const late = await fetch(s.url("/api/v1/me"), { headers: bearer(accessToken) });
      assert.match(
        late.headers.get("www-authenticate") ?? "",
        /^Bearer realm="proplab", error="invalid_token"$/,
      );
      await assertProblem(late, 401, "invalid-token");
    });
  },
);
