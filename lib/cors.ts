/** CORS: off unless origins are configured; then only those origins, never credentials. */

const ALLOW_HEADERS = "authorization, content-type, idempotency-key, x-api-key, x-request-id";
const EXPOSE_HEADERS =
  "ratelimit, ratelimit-policy, retry-after, x-request-id, idempotent-replayed, etag, location";

/** The CORS headers for a request from `origin`, or null when CORS does not apply. */
export function corsHeaders(origin: string | null, allowed: readonly string[]): Headers | null {
  if (!origin || allowed.length === 0) return null;
  if (!allowed.includes(origin) && !allowed.includes("*")) return null;
  return new Headers({
    "access-control-allow-origin": allowed.includes("*") ? "*" : origin,
    "access-control-expose-headers": EXPOSE_HEADERS,
    "vary": "Origin",
  });
}

/** True for a CORS preflight request. */
export function isPreflight(req: Request): boolean {
  return req.method === "OPTIONS" && req.headers.has("origin") &&
    req.headers.has("access-control-request-method");
}

/** The answer to an allowed preflight. */
export function preflightResponse(cors: Headers): Response {
  const h = new Headers(cors);
  h.set("access-control-allow-methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
  h.set("access-control-allow-headers", ALLOW_HEADERS);
  h.set("access-control-max-age", "600");
  return new Response(null, { status: 204, headers: h });
}
