/** The data API: picks by day and by id, and scored days (sharp tier; API key or JWT). */
import { ApiError, invalidField } from "../lib/problem.ts";
import { type Cursor, PAGE_QUERY, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { cachedJson, cachedJsonParts, cachedJsonText, etagOf } from "../lib/etag.ts";
import { createBatcher } from "../lib/batch.ts";
import { dateInZone, isIsoDate, isUuid } from "../lib/dates.ts";
import { findDataVersion, findPickById, findPicksByDate, findScoreByDate } from "../db/data.ts";
import type { Queryable } from "../db/client.ts";
import type { Ctx, Route } from "./context.ts";
import { DATE, NOT_MODIFIED, page, PICK, SCORE } from "./schemas.ts";

const DATA = { auth: ["jwt", "apiKey"], tier: "sharp", limit: "data" } as const;

const DATE_QUERY = {
  name: "date",
  description: "A calendar day, YYYY-MM-DD",
  required: true,
  schema: { type: "string", format: "date" },
} as const;

function dateParam(ctx: Ctx): string {
  const date = ctx.url.searchParams.get("date");
  if (date === null) throw invalidField("/date", "date is required (YYYY-MM-DD)");
  if (!isIsoDate(date)) throw invalidField("/date", "date must be a calendar date YYYY-MM-DD");
  return date;
}

function pickCursor(cursor: Cursor | null): Cursor | null {
  if (cursor && !isUuid(cursor.id)) {
    throw new ApiError("bad-request", "The cursor is not valid; pass back nextCursor as given");
  }
  return cursor;
}

/** Rendered pages of picks, each with its ETag, kept until the picks change. */
export interface DataCache {
  /**
   * The page cached under `key` if the picks have not changed since, else `load()`ed now.
   * `version`: the picks' version already read for this request (by the request gate).
   */
  page(
    key: string,
    load: () => Promise<string>,
    version?: number,
  ): Promise<{ text: string; etag: string }>;
}

/**
 * Builds the per-instance DataCache. Each request reads the picks' version (migration 0009;
 * concurrent requests share one read that starts after they arrived), so a page is never
 * served after a change has committed: no notification to wait for, on any instance.
 */
export function createDataCache(db: Queryable, maxEntries = 256): DataCache {
  const version = createBatcher(async (items: null[]) => {
    const v = await findDataVersion(db, "picks");
    return items.map(() => v);
  });
  // Kept as text: Deno copies a byte body on every Response, a string it sends as is.
  let entries = new Map<string, { version: number; text: string; etag: string }>();
  return {
    async page(key, load, known) {
      // Read before loading: a page loaded after a newer change is only refreshed once more.
      const v = known ?? await version(null);
      const hit = entries.get(key);
      if (hit && hit.version === v) return hit;
      const text = await load();
      const entry = { version: v, text, etag: etagOf(text) };
      if (entries.size >= maxEntries) entries = new Map();
      entries.set(key, entry);
      return entry;
    },
  };
}

// A day's picks, newest first by (created_at, id): the order the pipeline loaded them, reversed.
async function picksOfDay(ctx: Ctx, date: string): Promise<Response> {
  const page = parsePageRequest(ctx.url.searchParams);
  const cursor = pickCursor(page.cursor);
  const load = async () => {
    const rows = await findPicksByDate(ctx.db, date, cursor, page.limit + 1);
    const { items, nextCursor } = pageOf(
      rows,
      page.limit,
      (r) => ({ at: r.createdAt, id: r.pick.id }),
    );
    return JSON.stringify({ date, items: items.map((r) => r.pick), nextCursor });
  };
  // Inside a transaction the read must see that transaction: no cache there.
  const cache = ctx.db === ctx.deps.db ? ctx.deps.dataCache : undefined;
  if (!cache) return cachedJsonText(ctx.req, await load());
  const key = `${date} ${page.limit} ${ctx.url.searchParams.get("cursor") ?? ""}`;
  const { text, etag } = await cache.page(key, load, ctx.versions?.picks);
  return ctx.reply(cachedJsonParts(ctx.req, text, etag));
}

function picksToday(ctx: Ctx): Promise<Response> {
  // SettingSpec.default is typed unknown; the value was validated as a time zone on write.
  const zone = String(ctx.deps.settings.get("data.timezone"));
  const today = dateInZone(ctx.deps.now(), zone);
  return picksOfDay(ctx, today);
}

function picksByDate(ctx: Ctx): Promise<Response> {
  return picksOfDay(ctx, dateParam(ctx));
}

async function pickById(ctx: Ctx): Promise<Response> {
  const id = ctx.params.id;
  const pick = isUuid(id) ? await findPickById(ctx.db, id) : null;
  if (!pick) throw new ApiError("not-found", `There is no pick ${id}`);
  return cachedJson(ctx.req, pick);
}

async function scores(ctx: Ctx): Promise<Response> {
  const date = dateParam(ctx);
  const score = await findScoreByDate(ctx.db, date);
  if (!score) throw new ApiError("not-found", `${date} has not been scored`);
  return cachedJson(ctx.req, score);
}

/** Routes of this file. */
export const dataRoutes: Route[] = [
  {
    method: "GET",
    path: "/api/v1/data/picks/today",
    summary: "Today's picks (today in the data.timezone setting)",
    ...DATA,
    query: PAGE_QUERY,
    responses: {
      304: NOT_MODIFIED,
      200: { description: "Today's picks, newest first", schema: page(PICK, { date: DATE }) },
    },
    handler: picksToday,
  },
  {
    method: "GET",
    path: "/api/v1/data/picks",
    summary: "The picks of one day (?date=YYYY-MM-DD)",
    ...DATA,
    query: [DATE_QUERY, ...PAGE_QUERY],
    responses: {
      304: NOT_MODIFIED,
      200: { description: "The day's picks, newest first", schema: page(PICK, { date: DATE }) },
    },
    handler: picksByDate,
  },
  {
    method: "GET",
    path: "/api/v1/data/picks/:id",
    summary: "One pick",
    ...DATA,
    responses: { 304: NOT_MODIFIED, 200: { description: "The pick", schema: PICK } },
    handler: pickById,
  },
  {
    method: "GET",
    path: "/api/v1/data/scores",
    summary: "The scored day (?date=YYYY-MM-DD): record, units, ROI",
    ...DATA,
    query: [DATE_QUERY],
    responses: { 304: NOT_MODIFIED, 200: { description: "The scored day", schema: SCORE } },
    handler: scores,
  },
];
