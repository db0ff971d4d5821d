/** Cursor pagination for newest-first lists: opaque cursors over (timestamp, id). */
import { ApiError, invalidField } from "./problem.ts";

/** Where a page starts: strictly older than this (createdAt, id) pair. */
export interface Cursor {
  at: string;
  id: string;
}

/** A parsed `?limit=&cursor=` pair. */
export interface PageRequest {
  limit: number;
  cursor: Cursor | null;
}

/** Default and maximum page sizes. */
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 200;

/** Encodes the position after `row` as an opaque base64url cursor. */
export function encodeCursor(at: Date | string, id: string): string {
  const iso = at instanceof Date ? at.toISOString() : at;
  return btoa(JSON.stringify([iso, id])).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
// Row ids are UUIDs or bigint sequence numbers.
const CURSOR_ID_RE = /^[0-9A-Za-z-]{1,64}$/;

/** Decodes a cursor; throws a 400 problem for anything that is not one of ours. */
export function decodeCursor(raw: string): Cursor {
  try {
    const b64 = raw.replaceAll("-", "+").replaceAll("_", "/");
    const [at, id] = JSON.parse(atob(b64));
    // Exactly what encodeCursor writes: anything else (2026-02-30, NUL, SQL) never reaches SQL.
    if (typeof at !== "string" || typeof id !== "string" || !CURSOR_ID_RE.test(id)) {
      throw new Error("shape");
    }
    // toISOString() throws on an invalid date, and must give back the very same text.
    if (!ISO_RE.test(at) || new Date(at).toISOString() !== at) {
      throw new Error("time");
    }
    return { at, id };
  } catch {
    throw new ApiError("bad-request", "The cursor is not valid; pass back nextCursor as given");
  }
}

/** `limit` and `cursor` as openapi.json documents them (routes/context.ts QueryParam). */
export const PAGE_QUERY = [
  {
    name: "limit",
    description: `Items per page (default ${PAGE_DEFAULT})`,
    schema: { type: "integer", minimum: 1, maximum: PAGE_MAX, default: PAGE_DEFAULT },
  },
  {
    name: "cursor",
    description: "The nextCursor of the previous page, as given",
    schema: { type: "string" },
  },
] as const;

/** Reads `limit` (1..PAGE_MAX, default PAGE_DEFAULT) and `cursor` from the query string. */
export function parsePageRequest(params: URLSearchParams): PageRequest {
  const rawLimit = params.get("limit");
  let limit = PAGE_DEFAULT;
  if (rawLimit !== null) {
    if (!/^\d{1,4}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > PAGE_MAX) {
      throw invalidField("/limit", `limit must be a whole number from 1 to ${PAGE_MAX}`);
    }
    limit = Number(rawLimit);
  }
  const rawCursor = params.get("cursor");
  return { limit, cursor: rawCursor ? decodeCursor(rawCursor) : null };
}

/**
 * Shapes a page from rows fetched with `limit + 1`: the extra row only says there is more.
 * `key` gives each row's (timestamp, id) for the next cursor.
 */
export function pageOf<T>(
  rows: T[],
  limit: number,
  key: (row: T) => { at: Date | string; id: string },
): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  const more = rows.length > limit && last !== undefined;
  return { items, nextCursor: more ? encodeCursor(key(last).at, key(last).id) : null };
}
