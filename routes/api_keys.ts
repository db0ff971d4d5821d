/** Self-service API keys: JWT only (a key cannot manage keys), sharp tier or higher. */
import { ApiError } from "../lib/problem.ts";
import { json, noContent, readJson } from "../lib/http.ts";
import { objectBody, uuidParam } from "../lib/fields.ts";
import { PAGE_QUERY, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { displayPrefix, generateSecret, hashSecret, PREFIX } from "../lib/secrets.ts";
import { lockUser } from "../db/users.ts";
import {
  type ApiKeyRow,
  countActiveApiKeys,
  insertApiKey,
  listApiKeysPage,
  revokeApiKey,
} from "../db/api_keys.ts";
import type { Ctx, Route } from "./context.ts";
import { API_KEY, NEW_API_KEY, page } from "./schemas.ts";

/** Usable keys one user may hold at a time. */
export const MAX_API_KEYS = 25;

function shownKey(k: ApiKeyRow) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    createdAt: k.created_at.toISOString(),
    lastUsedAt: k.last_used_at?.toISOString() ?? null,
    expiresAt: k.expires_at?.toISOString() ?? null,
  };
}

async function createKey(ctx: Ctx): Promise<Response> {
  const now = ctx.deps.now();
  const f = objectBody(await readJson(ctx.req), ["name", "expiresAt"]);
  const name = f.string("name", 1, 100);
  const expiresAt = f.futureTimestamp("expiresAt", now);
  f.done();
  const userId = ctx.principal!.userId!;
  // Serialises concurrent creates by one user when ctx.db is a transaction (idempotent route).
  await lockUser(ctx.db, userId);
  if (await countActiveApiKeys(ctx.db, userId, new Date(now)) >= MAX_API_KEYS) {
    throw new ApiError("validation-failed", `A user may hold at most ${MAX_API_KEYS} API keys`, {
      errors: [{ pointer: "", detail: `revoke a key first (limit ${MAX_API_KEYS})` }],
    });
  }
  const rawKey = generateSecret(PREFIX.apiKey);
  const row = await insertApiKey(ctx.db, {
    id: crypto.randomUUID(),
    userId,
    name: name!,
    prefix: displayPrefix(rawKey),
    hash: hashSecret(rawKey),
    at: new Date(now),
    expiresAt,
  });
  return json({ ...shownKey(row), rawKey }, 201, { location: `/api/v1/me/api-keys/${row.id}` });
}

async function listKeys(ctx: Ctx): Promise<Response> {
  const page = parsePageRequest(ctx.url.searchParams);
  const rows = await listApiKeysPage(ctx.db, ctx.principal!.userId!, page);
  const { items, nextCursor } = pageOf(rows, page.limit, (r) => ({ at: r.created_at, id: r.id }));
  return json({ items: items.map(shownKey), nextCursor });
}

async function deleteKey(ctx: Ctx): Promise<Response> {
  const id = uuidParam(ctx.params, "id", "API key");
  const done = await revokeApiKey(ctx.db, id, ctx.principal!.userId!, new Date(ctx.deps.now()));
  if (!done) throw new ApiError("not-found", `No API key with id ${id}`);
  return noContent();
}

const base = { auth: ["jwt"], tier: "sharp" } as const;

/** Routes of this file. */
export const apiKeyRoutes: Route[] = [
  {
    ...base,
    method: "GET",
    path: "/api/v1/me/api-keys",
    summary: "List your API keys",
    query: PAGE_QUERY,
    responses: { 200: { description: "A page of your API keys", schema: page(API_KEY) } },
    handler: listKeys,
  },
  {
    ...base,
    method: "POST",
    path: "/api/v1/me/api-keys",
    idempotent: true,
    summary: "Create an API key (rawKey is shown once)",
    body: {
      type: "object",
      required: ["name"],
      properties: {
        name: { type: "string", minLength: 1, maxLength: 100 },
        expiresAt: {
          type: ["string", "null"],
          format: "date-time",
          description: "When it stops working (RFC 3339, in the future); null or absent: never",
        },
      },
      additionalProperties: false,
    },
    responses: {
      201: { description: "The new key; rawKey is shown only here", schema: NEW_API_KEY },
    },
    handler: createKey,
  },
  {
    ...base,
    method: "DELETE",
    path: "/api/v1/me/api-keys/:id",
    summary: "Revoke an API key",
    responses: { 204: { description: "Revoked" } },
    handler: deleteKey,
  },
];
