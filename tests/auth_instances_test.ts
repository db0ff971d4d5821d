import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createUser } from "./support/fixtures.ts";
import { PROBE_ROUTES } from "./support/probe_routes.ts";
import { ROUTES } from "../routes/mod.ts";
import { openPostgres } from "../db/client.ts";
import { rotateSigningKey } from "../db/signing_keys.ts";

const tdb = await openTestDb();
const routes = [...ROUTES, ...PROBE_ROUTES];

/** Two servers on one database; on PostgreSQL each has its own connection pool. */
async function twoInstances(fn: (a: TestServer, b: TestServer) => Promise<void>) {
  await tdb.reset();
  const other = tdb.url ? openPostgres(tdb.url, { max: 4 }) : tdb.db;
  const a = await startTestServer(tdb.db, {}, undefined, routes);
  const b = await startTestServer(other, {}, undefined, routes);
  try {
    await fn(a, b);
  } finally {
    await a.stop();
    await b.stop();
    if (other !== tdb.db) await other.close();
  }
}

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "a key revoked or a user downgraded on one instance is refused on the other at once",
}, async () => {
  await twoInstances(async (a, b) => {
    const user = await createUser(tdb.db, { tier: "sharp" });
    const jwt = await accessTokenFor(a, user);
    const auth = { authorization: `Bearer ${jwt}` };
    const created = await (await fetch(a.url("/api/v1/me/api-keys"), {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ name: "k" }),
    })).json();
    const onB = () =>
      fetch(b.url("/api/v1/data/probe"), { headers: { "x-api-key": created.rawKey } });
    const ok = await onB();
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const del = await fetch(a.url(`/api/v1/me/api-keys/${created.id}`), {
      method: "DELETE",
      headers: auth,
    });
    assert.equal(del.status, 204);
    await assertProblem(await onB(), 401, "invalid-token");
    const key2 = await createApiKey(tdb.db, user.id);
    await tdb.db.query("update users set tier = 'pro' where id = $1", [user.id]);
    const res = await fetch(b.url("/api/v1/data/probe"), { headers: { "x-api-key": key2 } });
    await assertProblem(res, 403, "forbidden");
  });
});

Deno.test({
  ...DB_TEST,
  name: "`proplab rotate-signing-key` reaches every instance through NOTIFY",
}, async () => {
  await twoInstances(async (a, b) => {
    const user = await createUser(tdb.db, { tier: "sharp" });
    const before = await accessTokenFor(b, user);
    const kid = await rotateSigningKey(tdb.db);
    const deadline = Date.now() + 5000;
    for (const s of [a, b]) {
      while (s.running.deps.identity!.keyring.currentKid() !== kid) {
        assert.ok(Date.now() < deadline, "instance did not pick up the new key");
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    // A token signed by A with the new key verifies on B, and B's old token still works on A.
    const after = await accessTokenFor(a, user);
    for (const [s, jwt] of [[b, after], [a, before]] as const) {
      const res = await fetch(s.url("/api/v1/data/probe"), {
        headers: { authorization: `Bearer ${jwt}` },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
  });
});

Deno.test({
  ...DB_TEST,
  name: "what an instance remembers of a credential gives way at once to a change made elsewhere",
}, async () => {
  await twoInstances(async (a, b) => {
    const user = await createUser(tdb.db, { tier: "sharp" });
    const admin = await createUser(tdb.db, { tier: "admin" });
    const key = { "x-api-key": await createApiKey(tdb.db, user.id) };
    const jwt = { authorization: `Bearer ${await accessTokenFor(b, user)}` };
    const onB = (headers: Record<string, string>) =>
      fetch(b.url("/api/v1/data/probe"), { headers });
    const served = async (headers: Record<string, string>) => {
      const res = await onB(headers);
      assert.equal(res.status, 200);
      await res.body?.cancel();
    };
    // B checks both credentials twice: the second time, its gate answers them from memory.
    for (let i = 0; i < 2; i++) for (const h of [key, jwt]) await served(h);

    // Downgraded through A's admin API: B refuses both at once.
    const adminJwt = await accessTokenFor(a, admin);
    const patch = (body: unknown) =>
      fetch(a.url(`/api/v1/admin/users/${user.id}`), {
        method: "PATCH",
        headers: {
          authorization: `Bearer ${adminJwt}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
      });
    const down = await patch({ tier: "pro" });
    assert.equal(down.status, 200);
    await down.body?.cancel();
    await assertProblem(await onB(key), 403, "forbidden");
    await assertProblem(await onB(jwt), 403, "forbidden");

    // Sharp again (by SQL), remembered again; then the session revoked by SQL: the JWT is
    // refused at once, the key still served.
    await tdb.db.query("update users set tier = 'sharp' where id = $1", [user.id]);
    for (let i = 0; i < 2; i++) for (const h of [key, jwt]) await served(h);
    await tdb.db.query("update sessions set revoked_at = now() where user_id = $1", [user.id]);
    await assertProblem(await onB(jwt), 401, "invalid-token");
    await served(key);

    // Disabled through A's admin API: the key is refused on B at once.
    const off = await patch({ disabled: true });
    assert.equal(off.status, 200);
    await off.body?.cancel();
    await assertProblem(await onB(key), 401, "invalid-token");
  });
});
