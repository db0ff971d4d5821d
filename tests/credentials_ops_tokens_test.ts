import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import type { TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createOpsToken, createUser } from "./support/fixtures.ts";
import { withProbeServer } from "./support/probe_routes.ts";

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
    await t.step("403 for a token without ops:tokens and for a sharp JWT", async () => {
      const reader = await createOpsToken(tdb.db, ["ops:read"]);
      await assertProblem(
        await create(s, reader, { name: "x", scopes: ["ops:read"] }),
        403,
        "forbidden",
      );
      const sharp = await accessTokenFor(s, await createUser(tdb.db, { tier: "sharp" }));
      await assertProblem(
        await create(s, sharp, { name: "x", scopes: ["ops:read"] }),
        403,
        "forbidden",
      );
    });
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
