/** Small HTTP helpers: JSON answers, bounded body reading, cookies, request ids. */
import { ApiError, invalidField } from "./problem.ts";

/** A response as parts: what `new Response(body, { status, headers })` would be given. */
export interface ResponseParts {
  status: number;
  body: string | null;
  /** Lowercase names. */
  headers: [string, string][];
}

/** The default body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** A JSON response with the given status and extra headers. */
export function json(body: unknown, status = 200, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers: h });
}

/** An empty 204 response. */
export function noContent(headers?: HeadersInit): Response {
  return new Response(null, { status: 204, headers });
}

/**
 * Reads the body once, for a step that looks at it before the handler: returns the bytes
 * and a copy of `req` carrying them, for the handler to read again.
 */
export async function keepBody(req: Request): Promise<{ bytes: Uint8Array; req: Request }> {
  const bytes = await readBodyBytes(req);
  return { bytes, req: new Request(req, { body: bytes as Uint8Array<ArrayBuffer> }) };
}

/**
 * The body as JSON when it parses (else null), for a step that looks at it before the
 * handler, which reads and validates it again from the returned copy of `req`.
 */
export async function keepJson(req: Request): Promise<{ value: unknown; req: Request }> {
  const kept = await keepBody(req);
  try {
    return { value: parseJsonBytes(kept.bytes), req: kept.req };
  } catch {
    return { value: null, req: kept.req };
  }
}

/**
 * Reads the request body as bytes, refusing (413) as soon as it passes `limit`
 * so a huge body is never held in memory whole.
 */
export async function readBodyBytes(req: Request, limit = DEFAULT_BODY_LIMIT): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d+$/.test(declared)) {
      throw new ApiError("bad-request", "Content-Length is not a number");
    }
    if (Number(declared) > limit) throw tooLarge(limit);
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function tooLarge(limit: number): ApiError {
  return new ApiError("payload-too-large", `The request body exceeds ${limit} bytes`);
}

/**
 * `req` with a body that fails with a 408 ApiError unless it arrives in full within `ms` of
 * the first read (a trickled or stalled body would otherwise hold its request open forever).
 * The clock starts only when something reads, so a request whose body is never read costs
 * no timer.
 */
export function withBodyDeadline(req: Request, ms: number): Request {
  if (!req.body) return req;
  const source = req.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expired: Promise<never> | null = null;
  const stop = () => clearTimeout(timer);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      expired ??= new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(
            new ApiError("request-timeout", `The request body did not arrive within ${ms} ms`, {
              headers: { connection: "close" },
            }),
          );
        }, ms);
        Deno.unrefTimer(timer!);
      });
      try {
        const chunk = await Promise.race([source.read(), expired]);
        if (chunk.done) {
          stop();
          controller.close();
        } else controller.enqueue(chunk.value);
      } catch (err) {
        stop();
        source.cancel().catch(() => {});
        controller.error(err);
      }
    },
    cancel(reason) {
      stop();
      return source.cancel(reason);
    },
  });
  // No `signal`: nothing here watches for a client going away, and reading `req.signal`
  // makes Deno.serve warn that it aborts on successful responses too (legacy behaviour).
  return new Request(req.url, { method: req.method, headers: req.headers, body });
}

/**
 * Most header bytes (names + values) a request may carry. Deno's HTTP layer itself refuses
 * heads over ~64 KiB with a bare 400; below that, this limit answers a 431 problem.
 */
export const MAX_HEADER_BYTES = 32 * 1024;

/** 431 when the request's headers together exceed MAX_HEADER_BYTES. */
export function checkHeaderSize(headers: Headers): void {
  let bytes = 0;
  headers.forEach((value, name) => void (bytes += name.length + value.length));
  if (bytes > MAX_HEADER_BYTES) {
    throw new ApiError("headers-too-large", `The request headers exceed ${MAX_HEADER_BYTES} bytes`);
  }
}

/** True when the Content-Type header names JSON (application/json or a +json type). */
export function isJsonContentType(value: string | null): boolean {
  if (!value) return false;
  const type = value.split(";")[0].trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Parses bytes as a JSON document: 400 for invalid UTF-8 or syntax, with where it failed. */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new ApiError("malformed-json", "The request body is not valid UTF-8");
  }
  if (text.trim() === "") throw new ApiError("malformed-json", "The request body is empty");
  try {
    return JSON.parse(text);
  } catch (err) {
    const where = err instanceof SyntaxError ? err.message : "invalid JSON";
    throw new ApiError("malformed-json", `The request body is not valid JSON: ${where}`);
  }
}

/** Deepest nesting a request body may have (ours need 4; 10,000 levels is an attack). */
export const MAX_JSON_DEPTH = 32;

/** A member name as one JSON Pointer reference token (RFC 6901 §4). */
export const escapePointer = (key: string) => key.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * Refuses (422) a parsed body nested deeper than MAX_JSON_DEPTH, or holding U+0000 or a lone
 * surrogate in any string or member name: PostgreSQL text and jsonb cannot store NUL, so it
 * would otherwise surface as a 500 wherever the value reaches the database. Iterative: no
 * stack to overflow.
 */
export function checkJsonValue(value: unknown): void {
  const stack: [unknown, string, number][] = [[value, "", 0]];
  while (stack.length) {
    const [v, pointer, depth] = stack.pop()!;
    if (typeof v === "string") {
      if (v.includes("\0")) {
        throw invalidField(pointer, "must not contain the NUL character (U+0000)");
      }
      if (!v.isWellFormed()) {
        throw invalidField(pointer, "must be well-formed Unicode (no lone surrogates)");
      }
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth >= MAX_JSON_DEPTH) {
      throw invalidField(pointer, `is nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    for (const [k, child] of Object.entries(v)) {
      const at = `${pointer}/${escapePointer(k)}`;
      if (k.includes("\0")) throw invalidField(at, "member names must not contain U+0000");
      stack.push([child, at, depth + 1]);
    }
  }
}

/**
 * Reads and parses a JSON body: 415 for another content type, 413 over the limit, 400
 * malformed, 422 for what checkJsonValue refuses.
 */
export async function readJson(req: Request, limit = DEFAULT_BODY_LIMIT): Promise<unknown> {
  if (!isJsonContentType(req.headers.get("content-type"))) {
    throw new ApiError("unsupported-media-type", "Send the body as application/json");
  }
  const value = parseJsonBytes(await readBodyBytes(req, limit));
  checkJsonValue(value);
  return value;
}

/**
 * 422 when a query parameter of `documented` is given more than once: which one was meant
 * is a guess, and a silent guess hides the client's bug. Others are left alone.
 */
export function refuseRepeated(params: URLSearchParams, documented: readonly { name: string }[]) {
  const repeated = documented.filter(({ name }) => params.getAll(name).length > 1);
  if (repeated.length === 0) return;
  throw new ApiError("validation-failed", "A query parameter is given more than once", {
    errors: repeated.map(({ name }) => ({
      pointer: `/${name}`,
      detail: "is given more than once",
    })),
  });
}

/** Parses a Cookie header into a map; later duplicates do not override the first. */
export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    const name = part.slice(0, Math.max(eq, 0)).trim();
    if (eq < 0 || name === "") continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      value = value.slice(1, -1);
    }
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/** Options of a Set-Cookie header. */
export interface CookieOptions {
  maxAge?: number;
  path?: string;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: "Strict" | "Lax" | "None";
}

/** Serialises one Set-Cookie header value. */
export function serializeCookie(name: string, value: string, opts: CookieOptions = {}): string {
  const parts = [`${name}=${value}`];
  if (opts.maxAge !== undefined) parts.push(`Max-Age=${opts.maxAge}`);
  if (opts.path) parts.push(`Path=${opts.path}`);
  if (opts.httpOnly) parts.push("HttpOnly");
  if (opts.secure) parts.push("Secure");
  if (opts.sameSite) parts.push(`SameSite=${opts.sameSite}`);
  return parts.join("; ");
}

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** The caller's X-Request-Id when it is a sane value, else a fresh UUID. */
export function requestIdFrom(header: string | null): string {
  return header !== null && SANE_REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

/**
 * The client's address: the socket peer, or with `trustProxy` = N, the Nth address
 * from the right of X-Forwarded-For (the one the outermost trusted proxy saw).
 */
export function clientIpFrom(headers: Headers, peer: string, trustProxy: number): string {
  if (trustProxy === 0) return peer;
  const xff = headers.get("x-forwarded-for");
  if (!xff) return peer;
  const hops = xff.split(",").map((s) => s.trim()).filter(Boolean);
  const pick = hops[hops.length - trustProxy];
  return pick && /^[0-9A-Fa-f:.]{2,45}$/.test(pick) ? pick : peer;
}
