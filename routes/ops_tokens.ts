/** Ops tokens: `POST|GET /api/v1/ops/tokens`, `DELETE /api/v1/ops/tokens/{id}` (ops:tokens). */
import { ApiError } from "../lib/problem.ts";
import { json, keepJson, noContent, readJson } from "../lib/http.ts";
import { type Fields, objectBody, uuidParam } from "../lib/fields.ts";
import { PAGE_QUERY, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { type Principal, type Scope, SCOPES } from "../lib/policy.ts";
import { displayPrefix, generateSecret, hashSecret, PREFIX } from "../lib/secrets.ts";
import {
  findOpsToken,
  insertOpsToken,
  listOpsTokensPage,
  type OpsTokenRow,
  revokeOpsToken,
} from "../db/ops_tokens.ts";
import type { Queryable } from "../db/client.ts";
import type { Ctx, Route } from "./context.ts";
import { NEW_OPS_TOKEN, OPS_TOKEN, page } from "./schemas.ts";

function shownToken(t: OpsTokenRow) {
  return {
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    prefix: t.prefix,
    createdBy: t.created_by,
    createdAt: t.created_at.toISOString(),
    lastUsedAt: t.last_used_at?.toISOString() ?? null,
    expiresAt: t.expires_at?.toISOString() ?? null,
  };
}

function scopesField(f: Fields): Scope[] {
  const v = f.body.scopes;
  if (!Array.isArray(v) || v.length === 0) {
    f.fail("/scopes", "scopes must be a non-empty array of ops scopes");
    return [];
  }
  v.forEach((s, i) => {
    if (!(SCOPES as readonly unknown[]).includes(s)) {
      f.fail(`/scopes/${i}`, `unknown scope ${JSON.stringify(s)}; known: ${SCOPES.join(", ")}`);
    }
  });
  return [...new Set(v as Scope[])];
}

/** Creates an ops token and returns its listing plus the raw `token` (shown only here). */
export async function createOpsToken(
  q: Queryable,
  t: {
    name: string;
    scopes: readonly Scope[];
    expiresAt: Date | null;
    createdBy: string;
    at: Date;
  },
) {
  const token = generateSecret(PREFIX.opsToken);
  const row = await insertOpsToken(q, {
    id: crypto.randomUUID(),
    ...t,
    prefix: displayPrefix(token),
    hash: hashSecret(token),
  });
  return { ...shownToken(row), token };
}

/** When the calling ops token expires; null for one that never does and for a JWT. */
async function ownExpiry(q: Queryable, p: Principal): Promise<Date | null> {
  return p.kind === "opsToken" ? (await findOpsToken(q, p.credentialId))?.expires_at ?? null : null;
}

/** No escalation: a token may grant or revoke only scopes it holds (an admin JWT holds all). */
function refuseUnheld(p: Principal, scopes: readonly unknown[], what: string) {
  const missing = scopes.filter((s) => !(p.scopes as readonly unknown[]).includes(s));
  if (missing.length) {
    throw new ApiError("forbidden", `You cannot ${what} you do not hold: ${missing.join(", ")}`);
  }
}

/**
 * Policy of a creation, before the rate limit (a refusal charges nothing): only scopes the
 * caller holds, and no expiry after the calling token's own. A body that does not parse is
 * left to the handler, which answers it with its 4xx.
 */
async function mayCreate(ctx: Ctx): Promise<void> {
  const { value, req } = await keepJson(ctx.req);
  ctx.req = req;
  const body = (value ?? {}) as { scopes?: unknown; expiresAt?: unknown };
  const p = ctx.principal!;
  // Unknown scopes are not refused here but reported by the handler's validation (422).
  const known = Array.isArray(body.scopes)
    ? body.scopes.filter((x) => (SCOPES as readonly unknown[]).includes(x))
    : [];
  refuseUnheld(p, known, "grant scopes");
  if (typeof body.expiresAt !== "string") return; // the handler gives it the caller's expiry
  const own = await ownExpiry(ctx.db, p);
  if (own && Date.parse(body.expiresAt) > own.getTime()) {
    throw new ApiError(
      "forbidden",
      `A token cannot outlive the token that creates it (${own.toISOString()})`,
    );
  }
}

/** Policy of a revocation, before the rate limit: only tokens whose scopes the caller holds. */
async function mayRevoke(ctx: Ctx): Promise<void> {
  const target = await findOpsToken(ctx.db, uuidParam(ctx.params, "id", "ops token"));
  if (target) refuseUnheld(ctx.principal!, target.scopes, "revoke a token with scopes");
}

async function createToken(ctx: Ctx): Promise<Response> {
  const now = ctx.deps.now();
  const f = objectBody(await readJson(ctx.req), ["name", "scopes", "expiresAt"]);
  const name = f.string("name", 1, 100);
  const scopes = scopesField(f);
  const expiresAt = f.futureTimestamp("expiresAt", now);
  f.done();
  const p = ctx.principal!;
  // Checked by `mayCreate` before the rate limit; a child of an expiring token expires with it.
  const created = await createOpsToken(ctx.db, {
    name: name!,
    scopes,
    expiresAt: expiresAt ?? await ownExpiry(ctx.db, p),
    createdBy: p.subject,
    at: new Date(now),
  });
  return json(created, 201, { location: `/api/v1/ops/tokens/${created.id}` });
}

async function listTokens(ctx: Ctx): Promise<Response> {
  const page = parsePageRequest(ctx.url.searchParams);
  const rows = await listOpsTokensPage(ctx.db, page);
  const { items, nextCursor } = pageOf(rows, page.limit, (r) => ({ at: r.created_at, id: r.id }));
  return json({ items: items.map(shownToken), nextCursor });
}

async function deleteToken(ctx: Ctx): Promise<Response> {
  const id = uuidParam(ctx.params, "id", "ops token");
  if (!(await revokeOpsToken(ctx.db, id, new Date(ctx.deps.now())))) {
    throw new ApiError("not-found", `No ops token with id ${id}`);
  }
  return noContent();
}

const base = {
  auth: ["jwt", "opsToken"],
  tier: "admin",
  scope: "ops:tokens",
  limit: "ops",
} as const;

/** Routes of this file. */
export const opsTokenRoutes: Route[] = [
  {
    ...base,
    method: "GET",
    path: "/api/v1/ops/tokens",
    summary: "List ops tokens",
    query: PAGE_QUERY,
    responses: { 200: { description: "A page of ops tokens", schema: page(OPS_TOKEN) } },
    handler: listTokens,
  },
  {
    ...base,
    method: "POST",
    path: "/api/v1/ops/tokens",
    idempotent: true,
    summary: "Create an ops token (token is shown once)",
    body: {
      type: "object",
      required: ["name", "scopes"],
      properties: {
        name: { type: "string", minLength: 1, maxLength: 100 },
        scopes: {
          type: "array",
          minItems: 1,
          items: { enum: SCOPES },
          description: "Only scopes the caller holds",
        },
        expiresAt: {
          type: ["string", "null"],
          format: "date-time",
          description: "When it stops working (RFC 3339, in the future); null or absent: " +
            "never. An ops token caller's child expires no later than the caller, by default with it",
        },
      },
      additionalProperties: false,
    },
    precheck: mayCreate,
    responses: {
      201: { description: "The new token; token is shown only here", schema: NEW_OPS_TOKEN },
    },
    handler: createToken,
  },
  {
    ...base,
    method: "DELETE",
    path: "/api/v1/ops/tokens/:id",
    summary: "Revoke an ops token",
    precheck: mayRevoke,
    responses: { 204: { description: "Revoked" } },
    handler: deleteToken,
  },
];
