/**
 * Secrets never leak: a full session over HTTP (signup, failed and good logins, refresh,
 * tier change, API key and ops token creation with Idempotency-Key and replay, data and ops
 * calls, refused credentials, an ops command, a 5xx from a test-only route, logout), then
 * every log line (debug level), /ops/errors, every listing and every database row is searched
 * for each password, raw key, ops token, refresh cookie value and JWT that was used.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer } from "./support/server.ts";
import { DB_TEST } from "./support/assert.ts";
import { createUser, FIXTURE_PASSWORD } from "./support/fixtures.ts";
import { ROUTES } from "../routes/mod.ts";
import type { Route } from "../routes/context.ts";
import { REFRESH_COOKIE } from "../routes/auth.ts";

const tdb = await openTestDb();

const BOOM: Route = {
  method: "POST",
  path: "/test/boom",
  auth: ["jwt", "apiKey", "opsToken"],
  summary: "test: fails with an unexpected error",
  handler: () => {
    throw new Error("handler exploded");
  },
};

/** `secret` with the character at `at` changed (to another one, always). */
function mistype(secret: string, at: number): string {
  const i = secret.length + at;
  return secret.slice(0, i) + (secret[i] === "a" ? "b" : "a") + secret.slice(i + 1);
}

function cookieOf(res: Response): string {
  const m = new RegExp(`${REFRESH_COOKIE}=([^;]*)`).exec(res.headers.get("set-cookie") ?? "");
  assert.ok(m && m[1], "a refresh cookie was set");
  return m[1];
}

Deno.test(
  {
    ...DB_TEST,
    name: "no password, key, token, cookie or JWT appears in logs, errors, listings or rows",
  },
  async () => {
    await tdb.reset();
    const s = await startTestServer(tdb.db, { WORKER: "off" }, undefined, [...ROUTES, BOOM]);
    const secrets = new Map<string, string>();
    const keep = (what: string, value: string) => {
      assert.ok(value.length >= 10, `${what} is long enough to search for`);
      secrets.set(what, value);
      return value;
    };
    const call = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
      const headers = new Headers(init.headers);
      if (init.json !== undefined) headers.set("content-type", "application/json");
      const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
      return await fetch(s.url(path), { ...init, headers, body });
    };
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    try {
      // Users: one signs up over HTTP; the admin is a fixture that logs in over HTTP.
      const email = "leaky@example.com";
      const password = keep("signup password", "correct horse battery staple");
      assert.equal(
        (await call("/api/v1/auth/signup", { method: "POST", json: { email, password } })).status,
        201,
      );
      const admin = await createUser(tdb.db, { tier: "admin" });
      keep("admin password", FIXTURE_PASSWORD);
      for (
        const [who, pw] of [[email, "wrong-password-1"], ["nobody@example.com", "wrong-password-2"]]
      ) {
        keep(`failed password ${pw}`, pw);
        const res = await call("/api/v1/auth/login", {
          method: "POST",
          json: { email: who, password: pw },
        });
        assert.equal(res.status, 401);
        await res.body?.cancel();
      }
      const login = async (e: string, pw: string, label: string) => {
        const res = await call("/api/v1/auth/login", {
          method: "POST",
          json: { email: e, password: pw },
        });
        assert.equal(res.status, 200);
        keep(`${label} refresh cookie`, cookieOf(res));
        return keep(`${label} access token`, (await res.json()).accessToken);
      };
      const adminJwt = await login(admin.email, FIXTURE_PASSWORD, "admin");
      await login(email, password, "user (first)");
      const refreshed = await call("/api/v1/auth/refresh", {
        method: "POST",
        headers: { cookie: `${REFRESH_COOKIE}=${secrets.get("user (first) refresh cookie")}` },
      });
      assert.equal(refreshed.status, 200);
      const userCookie = keep("user refresh cookie (rotated)", cookieOf(refreshed));
      const userJwt = keep("user access token (refreshed)", (await refreshed.json()).accessToken);

      const users = await (await call("/api/v1/admin/users", { headers: bearer(adminJwt) })).json();
      const userId = users.items.find((u: { email: string }) => u.email === email).id;
      const patched = await call(`/api/v1/admin/users/${userId}`, {
        method: "PATCH",
        headers: bearer(adminJwt),
        json: { tier: "sharp" },
      });
      assert.equal(patched.status, 200);
      await patched.body?.cancel();

      const keyReq = () =>
        call("/api/v1/me/api-keys", {
          method: "POST",
          headers: { ...bearer(userJwt), "idempotency-key": "key-1" },
          json: { name: "notebook" },
        });
      const rawKey = keep("raw API key", (await (await keyReq()).json()).rawKey);
      assert.equal(
        (await (await keyReq()).json()).rawKey,
        rawKey,
        "the replay answers the same key",
      );
      const picks = await call("/api/v1/data/picks/today", { headers: { "x-api-key": rawKey } });
      assert.equal(picks.status, 200);
      await picks.body?.cancel();

      const opsReq = () =>
        call("/api/v1/ops/tokens", {
          method: "POST",
          headers: { ...bearer(adminJwt), "idempotency-key": "ops-1" },
          json: { name: "ci", scopes: ["ops:read", "ops:commands", "ops:config", "ops:tokens"] },
        });
      const opsToken = keep("ops token", (await (await opsReq()).json()).token);
      assert.equal((await (await opsReq()).json()).token, opsToken);
      const queued = await call("/api/v1/ops/commands", {
        method: "POST",
        headers: { ...bearer(opsToken), "idempotency-key": "cmd-1" },
        json: { type: "settle", params: { date: "2026-03-01" } },
      });
      assert.equal(queued.status, 202);
      await queued.body?.cancel();

      // Refused credentials: a mistyped key and token, a forged JWT, a replayed cookie.
      const refused: [string, Record<string, string>][] = [
        ["/api/v1/data/picks/today", { "x-api-key": mistype(rawKey, -1) }],
        ["/api/v1/ops/health", bearer(mistype(opsToken, -1))],
        ["/api/v1/me", bearer(mistype(userJwt, -10))],
      ];
      for (const [path, headers] of refused) {
        const res = await call(path, { headers });
        assert.equal(res.status, 401);
        await res.body?.cancel();
      }
      const reused = await call("/api/v1/auth/refresh", {
        method: "POST",
        headers: { cookie: `${REFRESH_COOKIE}=${secrets.get("user (first) refresh cookie")}` },
      });
      // Within REFRESH_GRACE_MS the retired cookie yields one more token (two tabs): keep it
      // too. On a loaded machine the window may have passed: then it is reuse, and a 401.
      if (reused.status === 200) {
        keep("grace refresh cookie", cookieOf(reused));
        keep("grace access token", (await reused.json()).accessToken);
      } else {
        assert.equal(reused.status, 401);
        await reused.body?.cancel();
      }

      const boom = await call("/test/boom", {
        method: "POST",
        headers: {
          ...bearer(opsToken),
          "x-api-key": rawKey,
          cookie: `${REFRESH_COOKIE}=${userCookie}`,
        },
        json: { password },
      });
      assert.equal(boom.status, 500);
      await boom.body?.cancel();
      const logout = await call("/api/v1/auth/logout", {
        method: "POST",
        headers: { cookie: `${REFRESH_COOKIE}=${userCookie}` },
      });
      assert.equal(logout.status, 204);

      // Everything an operator or a user can read back.
      const views: [string, string][] = [["log", s.rawLogs.join("\n")]];
      const readable: [string, string][] = [
        ["/api/v1/ops/errors", opsToken],
        ["/api/v1/ops/tokens", opsToken],
        ["/api/v1/ops/jobs", opsToken],
        ["/api/v1/ops/config", opsToken],
        ["/api/v1/ops/config/audit", opsToken],
        ["/api/v1/ops/services", opsToken],
        ["/api/v1/admin/users", adminJwt],
        ["/api/v1/me/api-keys", adminJwt],
        ["/api/v1/me", adminJwt],
      ];
      for (const [path, token] of readable) {
        const res = await call(path, { headers: bearer(token) });
        assert.equal(res.status, 200, path);
        views.push([path, await res.text()]);
      }
      const errors = JSON.parse(views.find(([p]) => p === "/api/v1/ops/errors")![1]);
      assert.ok(
        errors.items.some((e: { status?: number }) => e.status === 500),
        "the 5xx is listed",
      );
      const tables = await tdb.db.query<{ name: string }>(
        "select tablename as name from pg_tables where schemaname = 'public'",
      );
      for (const { name } of tables) {
        const rows = await tdb.db.query<{ j: string }>(
          `select row_to_json(t)::text as j from "${name}" t`,
        );
        views.push([`table ${name}`, rows.map((r) => r.j).join("\n")]);
      }

      const leaks: string[] = [];
      for (const [what, secret] of secrets) {
        // The random part alone too, in case something strips a prefix or a JWT header.
        const needles = [secret, secret.slice(secret.indexOf("_") + 1), secret.split(".").at(-1)!];
        for (const [where, text] of views) {
          if (needles.some((n) => n.length >= 10 && text.includes(n))) {
            leaks.push(`${what} in ${where}`);
          }
        }
      }
      assert.deepEqual(leaks, []);
      assert.ok(s.rawLogs.some((l) => l.includes("handler exploded")), "the 5xx cause is logged");
      console.log(
        `secrets: ${secrets.size} secrets searched in ${s.rawLogs.length} log lines, ` +
          `${readable.length} listings and ${tables.length} tables: 0 found`,
      );
    } finally {
      await s.stop();
    }
  },
);
