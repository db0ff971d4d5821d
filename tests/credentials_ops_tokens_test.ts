import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import type { TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createOpsToken, createUser } from "./support/fixtures.ts";
import { withProbeServer } from "./support/probe_routes.ts";
import { upsertSetting } from "../db/settings.ts";

const tdb = await openTestDb();
const TOKENS = "/api/v1/ops/tokens";

const withServer = (fn: (s: TestServer) => Promise<void>) => withProbeServer(tdb, fn);

function create(s: TestServer, bearer: string, body: unknown, extra: HeadersInit = {}) {
  return fetch(s.url(TOKENS), {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json", ...extra },
    body: JSON.stringify(body),
  });
}

Deno.test({ ...DB_TEST, name: "POST /api/v1/ops/tokens answers each status" }, async (t) => {
  await withServer(async (s) => {
    const admin = await createUser(tdb.db, { tier: "admin" });
    const jwt = await accessTokenFor(s, admin);
    let token = "";
    await t.step("201 as the seed's request, headers and all", async () => {
      const apiKey = await createApiKey(tdb.db, admin.id);
      const res = await create(s, jwt, {
        name: "example",
        scopes: ["ops:read"],
        expiresAt: "2099-04-15T12:00:00Z",
      }, { "idempotency-key": "score-day-2026-05-27-001", "x-api-key": apiKey });
      assert.equal(res.status, 201);
      const body = await res.json();
      token = body.token;
      assert.match(token, /^nplops_[0-9A-Za-z]{38}$/);
      assert.equal(body.prefix, token.slice(0, 13));
      assert.deepEqual(body.scopes, ["ops:read"]);
      assert.equal(body.name, "example");
      assert.equal(body.expiresAt, "2099-04-15T12:00:00.000Z");
      for (const k of ["id", "createdAt"]) assert.equal(typeof body[k], "string");
    });
    await t.step("the token opens the ops API with its scope", async () => {
      const res = await fetch(s.url("/api/v1/ops/probe"), {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200);
      const { principal } = await res.json();
      assert.equal(principal.kind, "opsToken");
      assert.match(principal.subject, /^ops:[0-9a-f-]{36}$/);
    });
    await t.step("422 for an unknown scope, an empty name and a past expiry", async () => {
      const res = await create(s, jwt, {
        name: "",
        scopes: ["ops:read", "example"],
        expiresAt: "2026-04-15T12:00:00Z",
      });
      const body = await assertProblem(res, 422, "validation-failed");
      const pointers = (body.errors as { pointer: string }[]).map((e) => e.pointer).sort();
      assert.deepEqual(pointers, ["/expiresAt", "/name", "/scopes/1"]);
    });
    await t.step("422 for missing or empty scopes", async () => {
      await assertProblem(
        await create(s, jwt, { name: "x", scopes: [] }),
        422,
        "validation-failed",
      );
      await assertProblem(await create(s, jwt, { name: "x" }), 422, "validation-failed");
    });
    await t.step("an ops:tokens token grants only scopes it holds", async () => {
      const manager = await createOpsToken(tdb.db, ["ops:tokens", "ops:read"]);
      const ok = await create(s, manager, { name: "child", scopes: ["ops:read"] });
      assert.equal(ok.status, 201);
      assert.match((await ok.json()).createdBy, /^ops:/);
      const up = await create(s, manager, { name: "escalate", scopes: ["ops:read", "ops:config"] });
      const body = await assertProblem(up, 403, "forbidden");
      assert.match(String(body.detail), /ops:config/);
    });
    await t.step(
      "403 insufficient_scope for a token without ops:tokens and a sharp JWT",
      async () => {
        const reader = await createOpsToken(tdb.db, ["ops:read"]);
        const sharp = await accessTokenFor(s, await createUser(tdb.db, { tier: "sharp" }));
        for (const bearer of [reader, sharp]) {
          const res = await create(s, bearer, { name: "x", scopes: ["ops:read"] });
          assert.equal(
            res.headers.get("www-authenticate"),
            'Bearer realm="proplab", error="insufficient_scope"',
          );
          await assertProblem(res, 403, "forbidden");
        }
      },
    );
    assert.ok(!s.rawLogs.some((l) => l.includes(token)), "the raw token never reaches the log");
  });
});

Deno.test({ ...DB_TEST, name: "GET and DELETE /api/v1/ops/tokens list and revoke" }, async (t) => {
  await withServer(async (s) => {
    const manager = await createOpsToken(tdb.db, ["ops:tokens", "ops:read"]);
    const auth = { authorization: `Bearer ${manager}` };
    const child = await (await create(s, manager, { name: "child", scopes: ["ops:read"] })).json();
    await t.step("200 newest first, prefixes but no secrets", async () => {
      const res = await fetch(s.url(TOKENS), { headers: auth });
      assert.equal(res.status, 200);
      const body = await res.json();
      const items = body.items as { name: string; createdAt: string }[];
      assert.deepEqual(items.map((x) => x.name).sort(), ["child", "fixture"]);
      assert.ok(items[0].createdAt >= items[1].createdAt, "newest first");
      assert.ok(!JSON.stringify(body).includes(child.token));
      assert.ok(body.items.every((x: { token?: string }) => x.token === undefined));
    });
    await t.step("204 revokes and the token stops at once; then 404", async () => {
      const del = await fetch(s.url(`${TOKENS}/${child.id}`), { method: "DELETE", headers: auth });
      assert.equal(del.status, 204);
      const use = await fetch(s.url("/api/v1/ops/probe"), {
        headers: { authorization: `Bearer ${child.token}` },
      });
      await assertProblem(use, 401, "invalid-token");
      const again = await fetch(s.url(`${TOKENS}/${child.id}`), {
        method: "DELETE",
        headers: auth,
      });
      await assertProblem(again, 404, "not-found");
    });
  });
});

Deno.test({
  ...DB_TEST,
  name: "ops tokens work only on the ops API, API keys only on the data API",
}, async () => {
  await withServer(async (s) => {
    const ops = await createOpsToken(tdb.db, [
      "ops:read",
      "ops:commands",
      "ops:config",
      "ops:tokens",
    ]);
    const admin = await createUser(tdb.db, { tier: "admin" });
    const key = await createApiKey(tdb.db, admin.id);
    const onData = await fetch(s.url("/api/v1/data/probe"), {
      headers: { authorization: `Bearer ${ops}` },
    });
    await assertProblem(onData, 403, "forbidden");
    const onOps = await fetch(s.url("/api/v1/ops/probe"), { headers: { "x-api-key": key } });
    assert.equal(onOps.headers.get("www-authenticate"), null, "an API key is not a Bearer token");
    await assertProblem(onOps, 403, "forbidden");
    const onMe = await fetch(s.url("/api/v1/me"), { headers: { authorization: `Bearer ${ops}` } });
    await assertProblem(onMe, 403, "forbidden");
    // An admin JWT holds every ops scope.
    const jwt = await accessTokenFor(s, admin);
    const res = await fetch(s.url("/api/v1/ops/probe"), {
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

function revoke(s: TestServer, bearer: string, id: string) {
  return fetch(s.url(`${TOKENS}/${id}`), {
    method: "DELETE",
    headers: { authorization: `Bearer ${bearer}` },
  });
}

/** The id of the ops token `token`, from the listing (its prefix). */
async function idOf(s: TestServer, bearer: string, token: string): Promise<string> {
  const res = await fetch(s.url(TOKENS), { headers: { authorization: `Bearer ${bearer}` } });
  const { items } = await res.json() as { items: { id: string; prefix: string }[] };
  return items.find((x) => token.startsWith(x.prefix))!.id;
}

Deno.test({
  ...DB_TEST,
  name: "a refused grant or revocation charges nothing against the ops rate limit",
}, async () => {
  await withServer(async (s) => {
    await upsertSetting(tdb.db, "ratelimit.ops.perMinute", 2, "test");
    await s.running.deps.settings.refresh();
    const manager = await createOpsToken(tdb.db, ["ops:tokens", "ops:read"]);
    const strong = await createOpsToken(tdb.db, ["ops:tokens", "ops:read", "ops:config"]);
    const strongId = await idOf(s, strong, strong);
    for (let i = 0; i < 4; i++) {
      const res = await create(s, manager, { name: "up", scopes: ["ops:read", "ops:config"] });
      assert.equal(res.headers.get("ratelimit"), null, "nothing charged, nothing reported");
      await assertProblem(res, 403, "forbidden");
      await assertProblem(await revoke(s, manager, strongId), 403, "forbidden");
    }
    const list = () => fetch(s.url(TOKENS), { headers: { authorization: `Bearer ${manager}` } });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const res = await list();
      await res.body?.cancel();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [200, 200, 429], "the whole quota was left for the listing");
  });
});

Deno.test({
  ...DB_TEST,
  name: "an ops:tokens token revokes only tokens whose scopes it holds",
}, async () => {
  await withServer(async (s) => {
    const manager = await createOpsToken(tdb.db, ["ops:tokens", "ops:read"]);
    const strong = await createOpsToken(tdb.db, ["ops:tokens", "ops:read", "ops:config"]);
    const reader = await createOpsToken(tdb.db, ["ops:read"]);
    const refused = await revoke(s, manager, await idOf(s, strong, strong));
    const body = await assertProblem(refused, 403, "forbidden");
    assert.match(String(body.detail), /revoke .*ops:config/);
    const probe = (token: string) =>
      fetch(s.url("/api/v1/ops/probe"), { headers: { authorization: `Bearer ${token}` } });
    const still = await probe(strong);
    await still.body?.cancel();
    assert.equal(still.status, 200, "the stronger token still works");
    assert.equal((await revoke(s, manager, await idOf(s, manager, reader))).status, 204);
    await assertProblem(await probe(reader), 401, "invalid-token");
    assert.equal((await revoke(s, strong, await idOf(s, strong, manager))).status, 204);
    const unknown = await revoke(s, strong, crypto.randomUUID());
    await assertProblem(unknown, 404, "not-found");
  });
});

Deno.test({
  ...DB_TEST,
  name: "a token made by an expiring ops token expires no later than its maker",
}, async (t) => {
  await withServer(async (s) => {
    const until = new Date(Date.now() + 86_400_000);
    const maker = await createOpsToken(tdb.db, ["ops:tokens", "ops:read"], { expiresAt: until });
    await t.step("without expiresAt it takes the maker's", async () => {
      const res = await create(s, maker, { name: "child", scopes: ["ops:read"] });
      assert.equal(res.status, 201);
      assert.equal((await res.json()).expiresAt, until.toISOString());
    });
    await t.step("403 for a later expiry; 201 for an earlier one", async () => {
      const later = new Date(until.getTime() + 1000).toISOString();
      const res = await create(s, maker, { name: "x", scopes: ["ops:read"], expiresAt: later });
      const body = await assertProblem(res, 403, "forbidden");
      assert.match(String(body.detail), /outlive/);
      const earlier = new Date(until.getTime() - 60_000).toISOString();
      const ok = await create(s, maker, { name: "y", scopes: ["ops:read"], expiresAt: earlier });
      assert.equal(ok.status, 201);
      assert.equal((await ok.json()).expiresAt, earlier);
    });
    await t.step(
      "a token that never expires, and an admin's JWT, make ones that never do",
      async () => {
        const forever = await createOpsToken(tdb.db, ["ops:tokens", "ops:read"]);
        const res = await create(s, forever, { name: "z", scopes: ["ops:read"] });
        assert.equal((await res.json()).expiresAt, null);
        const jwt = await accessTokenFor(s, await createUser(tdb.db, { tier: "admin" }));
        const byJwt = await create(s, jwt, { name: "w", scopes: ["ops:read"] });
        assert.equal((await byJwt.json()).expiresAt, null);
      },
    );
  });
});
