/**
 * Strict credential header parsing (RFC 6750 §2.1): the Bearer scheme is case-insensitive,
 * its value must be a token68, anything else is a 400 invalid_request. Another scheme
 * (Basic, say) presents no Bearer credential: a 401 without an error code (§3). Which kind of
 * credential a value is follows from its prefix alone; nothing here touches the database.
 */
import { ApiError } from "./problem.ts";
import { PREFIX } from "./secrets.ts";

/** A credential as sent, before verification. */
export type PresentedCredential =
  | { kind: "jwt"; value: string }
  | { kind: "apiKey"; value: string }
  | { kind: "opsToken"; value: string };

const BEARER_RE = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const API_KEY_RE = /^[\x21-\x7e]{1,256}$/;

function invalidRequest(detail: string): ApiError {
  return new ApiError("bad-request", detail, {
    headers: { "www-authenticate": 'Bearer realm="proplab", error="invalid_request"' },
  });
}

/**
 * The value of `Authorization: Bearer <token>`; null when absent or of another scheme; 400
 * when malformed.
 */
export function parseBearer(header: string | null): string | null {
  if (header === null || !/^ *bearer(?: |$)/i.test(header)) return null;
  const m = BEARER_RE.exec(header);
  if (!m) throw invalidRequest("The Authorization header must be `Bearer <token>`");
  return m[1];
}

/** The value of `X-API-Key`, null when absent; 400 when it holds spaces or control characters. */
export function parseApiKeyHeader(header: string | null): string | null {
  if (header === null) return null;
  if (!API_KEY_RE.test(header)) throw invalidRequest("The X-API-Key header is malformed");
  return header;
}

/**
 * The credential a request presents. Authorization wins when both headers are sent (the
 * seed's own POST /ops/tokens example sends both); a Bearer value with the ops prefix is an
 * ops token, any other Bearer value is read as a JWT.
 */
export function presentedCredential(headers: Headers): PresentedCredential | null {
  const bearer = parseBearer(headers.get("authorization"));
  if (bearer !== null) {
    return bearer.startsWith(PREFIX.opsToken)
      ? { kind: "opsToken", value: bearer }
      : { kind: "jwt", value: bearer };
  }
  const apiKey = parseApiKeyHeader(headers.get("x-api-key"));
  return apiKey === null ? null : { kind: "apiKey", value: apiKey };
}
