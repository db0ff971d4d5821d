/** Strong ETags over response bodies and If-None-Match matching (RFC 9110 §8.8.3, §13.1.2). */
import { createHash } from "node:crypto";
import type { ResponseParts } from "./http.ts";

/** A strong ETag: the quoted base64url SHA-256 of the body. */
export function etagOf(body: string): string {
  return `"${createHash("sha256").update(body).digest("base64url")}"`;
}

/**
 * True when an If-None-Match header matches `etag`: `*`, or a list containing it.
 * Comparison is weak (a `W/` prefix is ignored), as RFC 9110 prescribes for If-None-Match.
 */
export function ifNoneMatchHits(header: string | null, etag: string): boolean {
  if (header === null) return false;
  const value = header.trim();
  if (value === "*") return true;
  const bare = (tag: string) => tag.trim().replace(/^W\//, "");
  return value.split(",").some((tag) => bare(tag) === etag);
}

/**
 * A JSON answer for a cacheable read: `ETag`, `Cache-Control: private, no-cache` (clients
 * may keep it but must revalidate), and 304 without a body when If-None-Match matches.
 */
export function cachedJson(req: Request, body: unknown): Response {
  return cachedJsonText(req, JSON.stringify(body));
}

/** `cachedJson` of an already serialised body (and its ETag, when known). */
export function cachedJsonText(req: Request, text: string, etag = etagOf(text)): Response {
  const { status, body, headers } = cachedJsonParts(req, text, etag);
  return new Response(body, { status, headers });
}

/** The parts of `cachedJsonText`'s answer, for a caller that adds headers before building it. */
export function cachedJsonParts(req: Request, text: string, etag = etagOf(text)): ResponseParts {
  const headers: [string, string][] = [["etag", etag], ["cache-control", "private, no-cache"]];
  if (ifNoneMatchHits(req.headers.get("if-none-match"), etag)) {
    return { status: 304, body: null, headers };
  }
  headers.push(["content-type", "application/json"]);
  return { status: 200, body: text, headers };
}
