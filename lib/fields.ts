/** Request-body field checks that collect every problem into one 422 `errors` array. */
import { ApiError, type FieldError } from "./problem.ts";
import { escapePointer } from "./http.ts";

const EMAIL_RE = /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)+$/;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// RFC 3339 date-time with a zone (Z or ±hh:mm), as the seed's `expiresAt` example.
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/** True for an RFC 3339 date-time with a zone, as the API takes `expiresAt`. */
export const isRfc3339 = (s: string) => RFC3339_RE.test(s) && !Number.isNaN(Date.parse(s));

/** True for an email address as signup takes it (3–254 characters). */
export const isEmail = (s: string) => s.length >= 3 && s.length <= 254 && EMAIL_RE.test(s);

/** Collects field errors; `done()` throws one 422 when there are any. */
export class Fields {
  readonly errors: FieldError[] = [];

  constructor(readonly body: Record<string, unknown>) {}

  /** Records an error at `pointer`. */
  fail(pointer: string, detail: string): void {
    this.errors.push({ pointer, detail });
  }

  /** Throws the collected errors as a 422 problem. */
  done(): void {
    if (!this.errors.length) return;
    const detail = this.errors.map((e) => `${e.pointer}: ${e.detail}`).join("; ");
    throw new ApiError("validation-failed", detail, { errors: this.errors });
  }

  /** A trimmed string of `min`..`max` characters, or undefined (with an error recorded). */
  string(name: string, min: number, max: number): string | undefined {
    const v = this.body[name];
    if (typeof v !== "string") return void this.fail(`/${name}`, `${name} must be a string`);
    const s = v.trim();
    if (s.length < min || s.length > max) {
      return void this.fail(`/${name}`, `${name} must be ${min} to ${max} characters long`);
    }
    return s;
  }

  /** An email address (trimmed), or undefined with an error recorded. */
  email(name: string): string | undefined {
    const s = this.string(name, 3, 254);
    if (s !== undefined && !EMAIL_RE.test(s)) {
      return void this.fail(`/${name}`, `${name} is not a valid email address`);
    }
    return s;
  }

  /** An optional RFC 3339 timestamp strictly after `now`; null when absent or null. */
  futureTimestamp(name: string, now: number): Date | null {
    const v = this.body[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string" || !isRfc3339(v)) {
      this.fail(`/${name}`, `${name} must be an RFC 3339 date-time such as 2026-04-15T12:00:00Z`);
      return null;
    }
    if (Date.parse(v) <= now) this.fail(`/${name}`, `${name} must be in the future`);
    return new Date(Date.parse(v));
  }
}

/**
 * The JSON body as an object, or a 422 pointing at the whole document. Members other than
 * `known` are recorded as errors (a misspelt optional field must not be silently ignored).
 */
export function objectBody(value: unknown, known: readonly string[]): Fields {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError("validation-failed", "The body must be a JSON object", {
      errors: [{ pointer: "", detail: "must be a JSON object" }],
    });
  }
  const f = new Fields(value as Record<string, unknown>);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) f.fail(`/${escapePointer(key)}`, "is not a field of this request");
  }
  return f;
}

/** The path parameter `name` when it is a UUID; 404 otherwise (no such resource can exist). */
export function uuidParam(params: Record<string, string>, name: string, what: string): string {
  const v = params[name] ?? "";
  if (!UUID_RE.test(v)) throw new ApiError("not-found", `No ${what} with id ${v}`);
  return v.toLowerCase();
}
