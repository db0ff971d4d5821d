import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import type { TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createUser } from "./support/fixtures.ts";
import { withProbeServer } from "./support/probe_routes.ts";
import { MAX_API_KEYS } from "../routes/api_keys.ts";

const tdb = await openTestDb();

const withServer = (fn: (s: TestServer) => Promise<void>) => withProbeServer(tdb, fn);

const KEYS = "/api/v1/me/api-keys";

function createKey(s: TestServer, jwt: string, body: unknown) {
  return fetch(s.url(KEYS), {
    method: "POST",
    headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

Deno.test({ ...DB_TEST, name: "POST /api/v1/me/api-keys answers each status" }, async (t) => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "sharp" });
    const jwt = await accessTokenFor(s, user);
    let rawKey = "";
    await t.step("201 with rawKey once, as the seed's curl", async () => {
      const res = await createKey(s, jwt, { name: "my-notebook" });
      assert.equal(res.status, 201);
      const body = await res.json();
      rawKey = body.rawKey;
      assert.match(rawKey, /^npl_[0-9A-Za-z]{38}$/);
      assert.equal(body.name, "my-notebook");
      assert.equal(body.prefix, rawKey.slice(0, 10));
      assert.equal(body.expiresAt, null);
      assert.equal(body.lastUsedAt, null);
      const [row] = await tdb.db.query<{ key_hash: string }>("select key_hash from api_keys");
      assert.notEqual(row.key_hash, rawKey);
      assert.match(row.key_hash, /^[0-9a-f]{64}$/);
    });
    await t.step("the key authenticates the data API as its owner", async () => {
      const res = await fetch(s.url("/api/v1/data/probe"), { headers: { "x-api-key": rawKey } });
      assert.equal(res.status, 200);
      const { principal } = await res.json();
      assert.equal(principal.kind, "apiKey");
      assert.equal(principal.subject, `user:${user.id}`);
      assert.equal(principal.tier, "sharp");
    });
    await t.step("422 for an empty name and a past expiresAt", async () => {
      const res = await createKey(s, jwt, { name: " ", expiresAt: "2001-01-01T00:00:00Z" });
      const body = await assertProblem(res, 422, "validation-failed");
      const pointers = (body.errors as { pointer: string }[]).map((e) => e.pointer).sort();
      assert.deepEqual(pointers, ["/expiresAt", "/name"]);
    });
    await t.step("422 for an expiresAt that is not RFC 3339", async () => {
      const res = await createKey(s, jwt, { name: "x", expiresAt: "tomorrow" });
      await assertProblem(res, 422, "validation-failed");
    });
    await t.step("201 with a future expiresAt", async () => {
      const res = await createKey(s, jwt, { name: "x", expiresAt: "2099-01-01T00:00:00Z" });
      assert.equal(res.status, 201);
      assert.equal((await res.json()).expiresAt, "2099-01-01T00:00:00.000Z");
    });
    await t.step(`422 beyond ${MAX_API_KEYS} keys`, async () => {
      for (let i = 2; i < MAX_API_KEYS; i++) await createApiKey(tdb.db, user.id);
      const res = await createKey(s, jwt, { name: "one too many" });
      await assertProblem(res, 422, "validation-failed");
    });
    await t.step("403 for a pro user, 403 with an API key instead of a JWT", async () => {
      const pro = await createUser(tdb.db, { tier: "pro" });
      await assertProblem(
        await createKey(s, await accessTokenFor(s, pro), { name: "x" }),
        403,
        "forbidden",
      );
      const res = await fetch(s.url(KEYS), { headers: { "x-api-key": rawKey } });
      await assertProblem(res, 403, "forbidden");
    });
    assert.ok(!s.rawLogs.some((l) => l.includes(rawKey)), "the raw key never reaches the log");
  });
});

Deno.test({ ...DB_TEST, name: "GET and DELETE /api/v1/me/api-keys list and revoke" }, async (t) => {
  await withServer(async (s) => {
    const user = await createUser(tdb.db, { tier: "admin" });
    const other = await createUser(tdb.db, { tier: "sharp" });
    const jwt = await accessTokenFor(s, user);
    const auth = { authorization: `Bearer ${jwt}` };
    const ids: string[] = [];
    for (const name of ["a", "b", "c"]) {
      const res = await createKey(s, jwt, { name });
      ids.push((await res.json()).id);
    }
    const otherKey = await createApiKey(tdb.db, other.id);
    await t.step("200 newest first with cursor pagination, no secrets", async () => {
      const p1 = await (await fetch(s.url(`${KEYS}?limit=2`), { headers: auth })).json();
      assert.deepEqual(p1.items.map((k: { name: string }) => k.name), ["c", "b"]);
      assert.ok(p1.nextCursor);
      for (const k of p1.items) assert.equal(k.rawKey, undefined);
      const p2 = await (await fetch(s.url(`${KEYS}?limit=2&cursor=${p1.nextCursor}`), {
        headers: auth,
      })).json();
      assert.deepEqual(p2.items.map((k: { name: string }) => k.name), ["a"]);
      assert.equal(p2.nextCursor, null);
    });
    await t.step("lastUsedAt is written behind, in one batch", async () => {
      const raw = (await (await createKey(s, jwt, { name: "used" })).json()).rawKey;
      const use = await fetch(s.url("/api/v1/data/probe"), { headers: { "x-api-key": raw } });
      await use.body?.cancel();
      await s.running.deps.identity!.usage.flush();
      const list = await (await fetch(s.url(KEYS), { headers: auth })).json();
      const used = list.items.find((k: { name: string }) => k.name === "used");
      assert.match(used.lastUsedAt, /^\d{4}-.*Z$/);
    });
    await t.step("204 revokes; the key stops at once; 404 the second time", async () => {
      const raw = await (await createKey(s, jwt, { name: "doomed" })).json();
      const del = await fetch(s.url(`${KEYS}/${raw.id}`), { method: "DELETE", headers: auth });
      assert.equal(del.status, 204);
      const use = await fetch(s.url("/api/v1/data/probe"), {
        headers: { "x-api-key": raw.rawKey },
      });
      await assertProblem(use, 401, "invalid-token");
      const again = await fetch(s.url(`${KEYS}/${raw.id}`), { method: "DELETE", headers: auth });
      await assertProblem(again, 404, "not-found");
    });
    await t.step("404 for another user's key and for a non-UUID id", async () => {
      const [row] = await tdb.db.query<{ id: string }>(
        "select id from api_keys where user_id = $1",
        [other.id],
      );
      const res = await fetch(s.url(`${KEYS}/${row.id}`), { method: "DELETE", headers: auth });
      await assertProblem(res, 404, "not-found");
      const still = await fetch(s.url("/api/v1/data/probe"), {
        headers: { "x-api-key": otherKey },
      });
      assert.equal(still.status, 200);
      await still.body?.cancel();
      await assertProblem(
        await fetch(s.url(`${KEYS}/nope`), { method: "DELETE", headers: auth }),
        404,
        "not-found",
      );
    });
  });
});

Deno.test(
  { ...DB_TEST, name: "X-API-Key follows its owner's tier and disabled flag now" },
  async () => {
    await withServer(async (s) => {
      const user = await createUser(tdb.db, { tier: "sharp" });
      const key = await createApiKey(tdb.db, user.id);
      const probe = () => fetch(s.url("/api/v1/data/probe"), { headers: { "x-api-key": key } });
      const ok = await probe();
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
      await tdb.db.query("update users set tier = 'pro' where id = $1", [user.id]);
      await assertProblem(await probe(), 403, "forbidden");
      await tdb.db.query("update users set tier = 'sharp', disabled = true where id = $1", [
        user.id,
      ]);
      await assertProblem(await probe(), 401, "invalid-token");
      const expired = await createApiKey(tdb.db, (await createUser(tdb.db, { tier: "sharp" })).id, {
        expiresAt: new Date(Date.now() - 1000),
      });
      const res = await fetch(s.url("/api/v1/data/probe"), { headers: { "x-api-key": expired } });
      await assertProblem(res, 401, "invalid-token");
    });
  },
);
