/**
 * Test-only idempotent routes and a test authenticator, used until the real creating routes
 * (POST /me/api-keys, /ops/tokens, /ops/commands, /auth/signup) exist on this branch.
 * The middleware and the database under them are the real ones.
 */
import { ApiError, invalidField } from "../../lib/problem.ts";
import { json, readJson } from "../../lib/http.ts";
import { type Principal, SCOPES } from "../../lib/policy.ts";
import type { Queryable } from "../../db/client.ts";
import type { Ctx, Route } from "../../routes/context.ts";

/** Creates the table the test routes write their one effect to. */
export async function createThingsTable(db: Queryable): Promise<void> {
  await db.exec(
    `create table if not exists test_things (
       id serial primary key, name text not null, scope text not null)`,
  );
}

/** Rows in test_things: the number of effects that happened. */
export async function countThings(db: Queryable): Promise<number> {
  const rows = await db.query<{ n: number }>("select count(*)::int as n from test_things");
  return rows[0].n;
}

/** Principal from `X-Test-Principal: user:<id>` (an admin JWT with every scope), or null. */
export function testAuthenticate(req: Request): Promise<Principal | null> {
  const subject = req.headers.get("x-test-principal");
  if (subject === null) return Promise.resolve(null);
  return Promise.resolve({
    kind: "jwt",
    subject,
    userId: subject.slice(subject.indexOf(":") + 1),
    tier: "admin",
    scopes: SCOPES,
    credentialId: "test-session",
  });
}

/** Hooks a test can use to hold a handler in flight. */
export interface ThingHooks {
  /** Awaited by the handler after its insert, before answering. */
  hold?: () => Promise<void>;
}

interface ThingBody {
  name?: unknown;
  fail?: unknown;
}

/**
 * `POST /test/things` {name, fail?}: inserts one row through ctx.db and answers 201 with a
 * Location, after `X-Test-Sleep-Ms` if sent. `fail`: "throw" (500 after the insert), "500" (a returned 500),
 * "422" (validation, before the insert), "429" (quota), "409" (conflict).
 */
async function createThing(ctx: Ctx, hooks: ThingHooks): Promise<Response> {
  const body = await readJson(ctx.req) as ThingBody;
  if (typeof body.name !== "string" || body.name === "") {
    throw invalidField("/name", "name must be a non-empty string");
  }
  if (body.fail === "422") throw invalidField("/fail", "asked to fail");
  if (body.fail === "429") throw new ApiError("quota-exceeded", "asked to be limited");
  if (body.fail === "409") throw new ApiError("conflict", "asked to conflict");
  const scope = ctx.principal?.subject ?? `ip:${ctx.clientIp}`;
  const [row] = await ctx.db.query<{ id: number }>(
    "insert into test_things (name, scope) values ($1, $2) returning id",
    [body.name, scope],
  );
  // Slowness comes from a header, which is not part of the fingerprint: a retry may be fast.
  const sleepMs = Number(ctx.req.headers.get("x-test-sleep-ms") ?? 0);
  if (sleepMs > 0) {
    console.log(JSON.stringify({ msg: "test handler started", name: body.name }));
    await new Promise((r) => setTimeout(r, sleepMs));
  }
  await hooks.hold?.();
  if (body.fail === "throw") throw new Error("test failure after the insert");
  if (body.fail === "500") return json({ error: "returned 500" }, 500);
  return json({ id: row.id, name: body.name, nonce: crypto.randomUUID() }, 201, {
    location: `/test/things/${row.id}`,
  });
}

/** Routes for the idempotency tests. */
export function thingRoutes(hooks: ThingHooks = {}): Route[] {
  return [
    {
      method: "POST",
      path: "/test/things",
      auth: ["jwt"],
      summary: "test: create a thing",
      limit: "ops",
      idempotent: true,
      handler: (ctx) => createThing(ctx, hooks),
    },
    {
      method: "POST",
      path: "/test/signup",
      auth: [],
      summary: "test: anonymous create",
      idempotent: true,
      handler: (ctx) => createThing(ctx, hooks),
    },
    {
      method: "POST",
      path: "/test/secrets",
      auth: ["jwt"],
      summary: "test: a creating route whose answer carries a secret",
      idempotent: true,
      handler: async (ctx) => {
        await ctx.db.query("insert into test_things (name, scope) values ('secret', $1)", [
          ctx.principal!.subject,
        ]);
        const token = `nplops_${crypto.randomUUID().replaceAll("-", "")}`;
        return json({ name: "ci", token }, 201);
      },
    },
    {
      method: "GET",
      path: "/test/things/count",
      auth: [],
      summary: "test: how many effects",
      handler: async (ctx) => json({ count: await countThings(ctx.db) }),
    },
  ];
}
