/** RFC 9457 problem details: one error type, one code → status table. */
import type { ResponseParts } from "./http.ts";

export type ErrorCode =
  | "bad-request"
  | "malformed-json"
  | "unauthorized"
  | "invalid-token"
  | "forbidden"
  | "signup-disabled"
  | "not-found"
  | "method-not-allowed"
  | "conflict"
  | "idempotency-in-progress"
  | "idempotency-key-reused"
  | "payload-too-large"
  | "request-timeout"
  | "headers-too-large"
  | "unsupported-media-type"
  | "validation-failed"
  | "quota-exceeded"
  | "internal"
  | "database-unavailable"
  | "busy"
  | "shutting-down";

/** Status and public title of every error code. */
export const CODE_STATUS = {
  "bad-request": { status: 400, title: "Bad request" },
  "malformed-json": { status: 400, title: "Malformed JSON body" },
  "unauthorized": { status: 401, title: "Authentication required" },
  "invalid-token": { status: 401, title: "Invalid credential" },
  "forbidden": { status: 403, title: "Insufficient tier or scope" },
  "signup-disabled": { status: 403, title: "Signup disabled" },
  "not-found": { status: 404, title: "Not found" },
  "method-not-allowed": { status: 405, title: "Method not allowed" },
  "conflict": { status: 409, title: "Conflict" },
  "idempotency-in-progress": {
    status: 409,
    title: "Request with this Idempotency-Key in progress",
  },
  "idempotency-key-reused": { status: 422, title: "Idempotency-Key reused with another request" },
  "payload-too-large": { status: 413, title: "Request body too large" },
  "request-timeout": { status: 408, title: "Request body too slow" },
  "headers-too-large": { status: 431, title: "Request header fields too large" },
  "unsupported-media-type": { status: 415, title: "Unsupported media type" },
  "validation-failed": { status: 422, title: "Invalid request fields" },
  "quota-exceeded": { status: 429, title: "Rate limit exceeded" },
  "internal": { status: 500, title: "Internal server error" },
  "database-unavailable": { status: 503, title: "Service unavailable" },
  "busy": { status: 503, title: "Server busy" },
  "shutting-down": { status: 503, title: "Service unavailable" },
} as const satisfies Record<ErrorCode, { status: number; title: string }>;

/** One invalid field: a JSON pointer into the request body and what is wrong with it. */
export interface FieldError {
  pointer: string;
  detail: string;
}

/**
 * The one error type handlers throw; `extra` members and `headers` travel into the response.
 * An answer, not a fault: it is no `Error`, because building one costs Deno 1.3–2.2 µs even
 * with `Error.stackTraceLimit = 0` (~5 µs under load: a sixth of a 429's JavaScript time in
 * the 429-heavy bench's CPU profile).
 */
export class ApiError {
  readonly name = "ApiError";

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly options: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      extra?: Record<string, unknown>;
      type?: string;
    } = {},
  ) {}

  /** Its last rendering (problemParts), kept for when the same error answers again. */
  rendered: Rendered | null = null;

  get message(): string {
    return this.detail;
  }

  toString(): string {
    return `ApiError ${this.code}: ${this.detail}`;
  }

  get status(): number {
    return CODE_STATUS[this.code].status;
  }
}

/** Shorthand for a 422 with one field error. */
export function invalidField(pointer: string, detail: string): ApiError {
  return new ApiError("validation-failed", detail, { errors: [{ pointer, detail }] });
}

/** What the problem body needs to know about the request it answers. */
export interface ProblemContext {
  errorsBase: string;
  instance: string;
  requestId: string;
}

/** Renders an ApiError as an application/problem+json Response. */
export function problemResponse(err: ApiError, ctx: ProblemContext): Response {
  const { status, body, headers } = problemParts(err, ctx);
  return new Response(body, { status, headers });
}

/** The most field errors a problem lists; the rest are counted in one last entry. */
export const MAX_FIELD_ERRORS = 20;
/** The longest `detail` or pointer a problem repeats back. */
const MAX_TEXT = 300;

const clip = (s: string) => s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;

/**
 * A problem answer stays small whatever the request held (a 1 MB body of unknown members
 * must not answer 8 MB, nor be stored that size for an Idempotency-Key replay).
 */
function boundedErrors(errors: readonly FieldError[]): FieldError[] {
  const shown = errors.slice(0, MAX_FIELD_ERRORS).map(({ pointer, detail }) =>
    pointer.length > MAX_TEXT
      ? { pointer: "", detail: `a member whose name is over ${MAX_TEXT} characters ${detail}` }
      : { pointer, detail: clip(detail) }
  );
  const more = errors.length - shown.length;
  if (more > 0) shown.push({ pointer: "", detail: `and ${more} more problems like these` });
  return shown;
}

/** An error's body around its `requestId`, and its headers, for one errorsBase and instance. */
interface Rendered {
  errorsBase: string;
  instance: string;
  /** The body up to the requestId's value, and from after it. */
  head: string;
  tail: string;
  headers: readonly [string, string][];
}

// The members before `requestId` and after it, in the order problemParts writes them.
function render(err: ApiError, ctx: ProblemContext): Rendered {
  const { status, title } = CODE_STATUS[err.code];
  const before: Record<string, unknown> = {
    type: err.options.type ?? `${ctx.errorsBase}/${err.code}`,
    title,
    status,
    detail: clip(err.detail),
    instance: clip(ctx.instance),
  };
  const after: Record<string, unknown> = { ...err.options.extra };
  delete after.requestId;
  for (const name of Object.keys(before)) {
    if (name in after) before[name] = after[name];
    delete after[name];
  }
  if (err.options.errors) after.errors = boundedErrors(err.options.errors);
  const rest = JSON.stringify(after);
  const headers: [string, string][] = [["content-type", "application/problem+json"]];
  for (const [name, value] of Object.entries(err.options.headers ?? {})) {
    if (name.toLowerCase() !== "content-type") headers.push([name.toLowerCase(), value]);
  }
  return {
    errorsBase: ctx.errorsBase,
    instance: ctx.instance,
    head: `${JSON.stringify(before).slice(0, -1)},"requestId":`,
    tail: rest === "{}" ? "}" : `,${rest.slice(1)}`,
    headers,
  };
}

/**
 * The parts of `problemResponse`'s answer, for a caller that adds headers before building it.
 * An error answered again (a remembered refusal: routes/refusals.ts) reuses its rendering.
 */
export function problemParts(err: ApiError, ctx: ProblemContext): ResponseParts {
  let r = err.rendered;
  if (!r || r.instance !== ctx.instance || r.errorsBase !== ctx.errorsBase) {
    r = err.rendered = render(err, ctx);
  }
  return {
    status: err.status,
    body: r.head + JSON.stringify(ctx.requestId) + r.tail,
    headers: [...r.headers],
  };
}

/** The fixed public answer for an unexpected failure: the cause goes to the log, never here. */
export function internalError(): ApiError {
  return new ApiError("internal", "The server failed to handle this request; quote the requestId.");
}
