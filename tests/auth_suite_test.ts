/**
 * The shared auth suite, generated from the route table: every route that declares `auth`
 * is called with no credential, garbage, a mistyped secret, expired and revoked credentials
 * of each kind it accepts, each kind it does not accept, a tier below its minimum and a
 * token without its scope. Routes added to ROUTES later are covered without a change here.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createOpsToken, createUser } from "./support/fixtures.ts";
import { PROBE_ROUTES } from "./support/probe_routes.ts";
import { ROUTES } from "../routes/mod.ts";
import type { Route } from "../routes/context.ts";
import type { Db } from "../db/client.ts";
import { type CredentialKind, SCOPES, type Tier, TIERS } from "../lib/policy.ts";
import { generateSecret, hashSecret, PREFIX } from "../lib/secrets.ts";

const tdb = await openTestDb();

// Data and ops routes are built on other branches; the probes stand in for them until then.
const present = new Set(ROUTES.map((r) => r.path));
const routes: Route[] = [...ROUTES, ...PROBE_ROUTES.filter((r) => !present.has(r.path))];

/** Counts queries that touch credential tables (a mistyped secret must cause none). */
function countingDb(db: Db): { db: Db; lookups: () => number } {
  let n = 0;
  const wrapped: Db = {
    ...db,
    query(text, params) {
      if (/\b(api_keys|ops_tokens|sessions)\b/.test(text)) n++;
      return db.query(text, params);
    },
  };
  return { db: wrapped, lookups: () => n };
}

function mistype(secret: string): string {
  const last = secret.at(-1) === "a" ? "b" : "a";
  return secret.slice(0, -1) + last;
}

Deno.test(
  { ...DB_TEST, name: "every protected route refuses bad credentials (shared auth suite)" },
  async (t) => {
    await tdb.reset();
    let clock = Date.now();
    const counted = countingDb(tdb.db);
    const server = await startTestServer(counted.db, {}, () => clock, routes);
    try {
      const users = Object.fromEntries(
        await Promise.all(TIERS.map(async (tier) => [tier, await createUser(tdb.db, { tier })])),
      ) as Record<Tier, { id: string; tier: Tier }>;
      const jwt = async (tier: Tier) => await accessTokenFor(server, users[tier]);
      clock -= 3_600_000;
      const expiredJwt = await jwt("admin");
      clock += 3_600_000;
      const revokedJwt = await jwt("admin");
      await tdb.db.query(
        "update sessions set revoked_at = now() where user_id = $1 and revoked_at is null",
        [
          users.admin.id,
        ],
      );
      const validJwt = { free: "", pro: "", sharp: await jwt("sharp"), admin: await jwt("admin") };
      validJwt.free = await jwt("free");
      validJwt.pro = await jwt("pro");
      const adminKey = await createApiKey(tdb.db, users.admin.id);
      const expiredKey = await createApiKey(tdb.db, users.admin.id, {
        expiresAt: new Date(clock - 1000),
      });
      const revokedKey = await createApiKey(tdb.db, users.admin.id);
      await tdb.db.query("update api_keys set revoked_at = now() where key_hash = $1", [
        hashSecret(revokedKey),
      ]);
      const allOps = await createOpsToken(tdb.db, SCOPES);
      const expiredOps = await createOpsToken(tdb.db, SCOPES, {
        expiresAt: new Date(clock - 1000),
      });
      const revokedOps = await createOpsToken(tdb.db, SCOPES);
      await tdb.db.query("update ops_tokens set revoked_at = now() where token_hash = $1", [
        hashSecret(revokedOps),
      ]);

      const bearer = (v: string) => ({ authorization: `Bearer ${v}` });
      const valid: Record<CredentialKind, HeadersInit> = {
        jwt: bearer(validJwt.admin),
        apiKey: { "x-api-key": adminKey },
        opsToken: bearer(allOps),
      };
      const expired: Record<CredentialKind, HeadersInit> = {
        jwt: bearer(expiredJwt),
        apiKey: { "x-api-key": expiredKey },
        opsToken: bearer(expiredOps),
      };
      const revoked: Record<CredentialKind, HeadersInit> = {
        jwt: bearer(revokedJwt),
        apiKey: { "x-api-key": revokedKey },
        opsToken: bearer(revokedOps),
      };

      for (const route of routes.filter((r) => r.auth.length > 0)) {
        const path = route.path.replace(/:[A-Za-z]+/g, () => crypto.randomUUID());
        const call = (headers: HeadersInit) =>
          fetch(server.url(path), {
            method: route.method,
            headers: route.method === "GET" || route.method === "DELETE"
              ? headers
              : { ...headers, "content-type": "application/json" },
            body: route.method === "GET" || route.method === "DELETE" ? undefined : "{}",
          });
        await t.step(`${route.method} ${route.path}`, async () => {
          await assertProblem(await call({}), 401, "unauthorized");
          for (const junk of [bearer("garbage"), bearer("a.b.c"), { "x-api-key": "garbage" }]) {
            const res = await call(junk);
            assert.match(res.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
            await assertProblem(res, 401, "invalid-token");
          }
          const before = counted.lookups();
          const wrongPrefix = "nplx_" + generateSecret(PREFIX.apiKey).slice(4);
          await assertProblem(await call({ "x-api-key": wrongPrefix }), 401, "invalid-token");
          await assertProblem(await call({ "x-api-key": mistype(adminKey) }), 401, "invalid-token");
          await assertProblem(await call(bearer(mistype(allOps))), 401, "invalid-token");
          assert.equal(counted.lookups(), before, "a mistyped secret never reaches the database");
          for (const kind of route.auth) {
            await assertProblem(await call(expired[kind]), 401, "invalid-token");
            await assertProblem(await call(revoked[kind]), 401, "invalid-token");
          }
          for (const kind of (["jwt", "apiKey", "opsToken"] as const)) {
            if (!route.auth.includes(kind)) {
              await assertProblem(await call(valid[kind]), 403, "forbidden");
            }
          }
          if (route.tier && route.tier !== "free" && route.auth.includes("jwt")) {
            const below = TIERS[TIERS.indexOf(route.tier) - 1];
            await assertProblem(await call(bearer(validJwt[below])), 403, "forbidden");
          }
          if (route.scope && route.auth.includes("opsToken")) {
            const others = await createOpsToken(
              tdb.db,
              SCOPES.filter((x) => x !== route.scope),
            );
            await assertProblem(await call(bearer(others)), 403, "forbidden");
          }
        });
      }
    } finally {
      await server.stop();
    }
  },
);
