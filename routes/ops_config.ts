/** Ops configuration: list, change (validated per key, audited) and the audit trail (ops:config). */
import { ApiError, invalidField } from "../lib/problem.ts";
import { json, readJson } from "../lib/http.ts";
import { PAGE_QUERY, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { isSettingKey, type SettingKey, SETTINGS } from "../lib/settings.ts";
import { upsertSetting } from "../db/settings.ts";
import { findSettingAudit, findSettingUpdates } from "../db/settings_meta.ts";
import type { Ctx, Route } from "./context.ts";
import { page, SETTING, SETTING_CHANGE } from "./schemas.ts";

const OPS_CONFIG = {
  auth: ["jwt", "opsToken"],
  tier: "admin",
  scope: "ops:config",
  limit: "ops",
} as const;

type Updates = Awaited<ReturnType<typeof findSettingUpdates>>;

// `value` is what this instance uses now (its settings cache, refreshed within seconds).
function entryOf(ctx: Ctx, key: SettingKey, updates: Updates) {
  const spec = SETTINGS[key];
  const update = updates.get(key);
  return {
    key,
    value: ctx.deps.settings.get(key),
    default: spec.default,
    description: spec.description,
    updatedAt: update?.updatedAt.toISOString() ?? null,
    updatedBy: update?.updatedBy ?? null,
  };
}

async function listConfig(ctx: Ctx): Promise<Response> {
  const updates = await findSettingUpdates(ctx.db);
  const keys = Object.keys(SETTINGS) as SettingKey[];
  return json({ items: keys.map((key) => entryOf(ctx, key, updates)) });
}

async function putConfig(ctx: Ctx): Promise<Response> {
  const key = ctx.params.key;
  if (!isSettingKey(key)) throw new ApiError("not-found", `There is no setting named "${key}"`);
  const body = await readJson(ctx.req);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidField("/value", 'Send {"value": <json>}');
  }
  const extra = Object.keys(body).find((k) => k !== "value");
  if (extra !== undefined) throw invalidField(`/${extra}`, 'Send only {"value": <json>}');
  if (!("value" in body)) throw invalidField("/value", 'Send {"value": <json>}');
  const value = (body as { value: unknown }).value;
  const problem = SETTINGS[key].validate(value);
  if (problem) throw invalidField("/value", `${key} ${problem}`);
  // Not an idempotent route, so ctx.db is the pool: upsertSetting opens its own transaction.
  await upsertSetting(ctx.deps.db, key, value, ctx.principal!.subject);
  await ctx.deps.settings.refresh();
  return json(entryOf(ctx, key, await findSettingUpdates(ctx.db)));
}

async function listAudit(ctx: Ctx): Promise<Response> {
  const page = parsePageRequest(ctx.url.searchParams);
  if (page.cursor && !/^\d{1,18}$/.test(page.cursor.id)) {
    throw new ApiError("bad-request", "The cursor is not valid; pass back nextCursor as given");
  }
  const key = ctx.url.searchParams.get("key");
  if (key !== null && !isSettingKey(key)) {
    throw invalidField("/key", `There is no setting named "${key}"`);
  }
  const rows = await findSettingAudit(ctx.db, page.cursor, page.limit + 1, key);
  const { items, nextCursor } = pageOf(rows, page.limit, (r) => ({ at: r.changedAt, id: r.id }));
  return json({
    items: items.map((r) => ({ ...r, changedAt: r.changedAt.toISOString() })),
    nextCursor,
  });
}

/** Routes of this file. */
export const opsConfigRoutes: Route[] = [
  {
    method: "GET",
    path: "/api/v1/ops/config",
    summary: "Every setting with its value, default and description",
    ...OPS_CONFIG,
    responses: {
      200: {
        description: "Every setting",
        schema: {
          type: "object",
          required: ["items"],
          properties: { items: { type: "array", items: SETTING } },
          additionalProperties: false,
        },
      },
    },
    handler: listConfig,
  },
  {
    method: "GET",
    path: "/api/v1/ops/config/audit",
    summary: "Audit trail of setting changes, newest first",
    ...OPS_CONFIG,
    query: [
      { name: "key", description: "Only this setting's changes", schema: { type: "string" } },
      ...PAGE_QUERY,
    ],
    responses: { 200: { description: "A page of setting changes", schema: page(SETTING_CHANGE) } },
    handler: listAudit,
  },
  {
    method: "PUT",
    path: "/api/v1/ops/config/:key",
    summary: "Change one setting",
    ...OPS_CONFIG,
    body: {
      type: "object",
      required: ["value"],
      properties: {
        value: { description: "The new value; its type is the setting's (see GET /ops/config)" },
      },
      additionalProperties: false,
    },
    responses: { 200: { description: "The setting as changed", schema: SETTING } },
    handler: putConfig,
  },
];
