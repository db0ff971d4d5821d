/**
 * The PostgreSQL wire protocol as db/wire.ts speaks it, without I/O: which URLs it can serve,
 * frontend messages, parameters in text format, and the backend's rows and errors decoded
 * into the values postgres.js gives for the same types.
 */

/** Where and as whom to connect. */
export interface WireTarget {
  hostname: string;
  port: number;
  /** A unix socket's path, when the URL names a socket directory. */
  socketPath: string | null;
  user: string;
  password: string | null;
  database: string;
}

/** The server asked for something this client does not speak (an auth method, TLS). */
export class WireUnsupported extends Error {
  override name = "WireUnsupported";
}

/** An ErrorResponse from the server: `code` is the SQLSTATE. */
export class WireError extends Error {
  override name = "PostgresError";
  constructor(readonly code: string, message: string, readonly detail?: string) {
    super(message);
  }
}

const PLAIN_SSLMODES = new Set(["disable", "allow", "prefer"]);

/**
 * The connection a `postgres://` URL names, or null when this client cannot serve it: TLS
 * asked for, or options other than `sslmode` (plain), `host` (a socket directory) and
 * `application_name`. postgres.js connects without TLS unless `sslmode` asks for it.
 */
export function wireTarget(url: string): WireTarget | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") return null;
  for (const [k, v] of u.searchParams) {
    if (k === "sslmode" && PLAIN_SSLMODES.has(v)) continue;
    if (k === "host" && v.startsWith("/")) continue;
    if (k === "application_name") continue;
    return null;
  }
  const user = decodeURIComponent(u.username);
  if (!user || u.hostname.includes(",")) return null;
  const port = Number(u.port || 5432);
  const dir = u.searchParams.get("host");
  return {
    hostname: u.hostname.replace(/^\[|\]$/g, "") || "localhost",
    port,
    socketPath: dir ? `${dir}/.s.PGSQL.${port}` : null,
    user,
    password: u.password ? decodeURIComponent(u.password) : null,
    database: decodeURIComponent(u.pathname.slice(1)) || user,
  };
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** Builds one frontend message: a type byte (0 for the startup message) and a length. */
export class Message {
  private parts: Uint8Array[] = [];
  private size = 0;

  byte(b: number): this {
    return this.raw(Uint8Array.of(b));
  }
  int16(n: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setInt16(0, n);
    return this.raw(b);
  }
  int32(n: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n);
    return this.raw(b);
  }
  cstr(s: string): this {
    return this.raw(encoder.encode(s)).byte(0);
  }
  raw(b: Uint8Array): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
  /** The message with its header: `type` 0 for none (startup). */
  end(type: number): Uint8Array {
    const head = type ? 5 : 4;
    const out = new Uint8Array(head + this.size);
    const view = new DataView(out.buffer);
    if (type) out[0] = type;
    view.setInt32(type ? 1 : 0, 4 + this.size);
    let at = head;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

// Up to these lengths, ASCII is read and written faster in JavaScript than by a call into the
// runtime (TextDecoder ~110 ns, encodeInto ~90 ns whatever the length; measured in Deno 2.9).
const SHORT_READ = 12;
const SHORT_WRITE = 32;

/** Writes `s` as UTF-8 at `out[at]` (room for 3 bytes a character); answers the end. */
function put(out: Uint8Array, at: number, s: string): number {
  if (s.length <= SHORT_WRITE) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[at + i] = c;
    }
    if (i === s.length) return at + i;
  }
  return at + encoder.encodeInto(s, out.subarray(at)).written;
}

function int32At(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

/**
 * A Bind message (unnamed portal, text parameters and results) in one buffer: the gate sends
 * one per statement, with a dozen array parameters.
 */
export function bindMessage(statement: string, params: readonly unknown[]): Uint8Array {
  const texts = params.map(encodeParam);
  let room = 5 + 1 + statement.length * 3 + 1 + 2 + 2 + 2;
  for (const t of texts) room += 4 + (t === null ? 0 : t.length * 3);
  const out = new Uint8Array(room);
  out[0] = 0x42;
  let at = 6; // type, length, the unnamed portal's empty name
  // The statement's name, its 0, and 0 parameter format codes (all text): the buffer starts
  // zeroed.
  at = put(out, at, statement) + 3;
  out[at] = texts.length >> 8;
  out[at + 1] = texts.length & 0xff;
  at += 2;
  for (const t of texts) {
    if (t === null) {
      int32At(out, at, -1);
      at += 4;
      continue;
    }
    const end = put(out, at + 4, t);
    int32At(out, at, end - at - 4);
    at = end;
  }
  at += 2; // no result format codes (all text)
  int32At(out, 1, at - 1);
  return out.subarray(0, at);
}

export const SYNC = new Message().end(0x53);
export const EXECUTE = new Message().cstr("").int32(0).end(0x45);
export const DESCRIBE_PORTAL = new Message().byte(0x50).cstr("").end(0x44);

/** A parameter as PostgreSQL's text format: arrays as array literals, null as null. */
export function encodeParam(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return `{${v.map(arrayElement).join(",")}}`;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "boolean") return v ? "t" : "f";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

const NEEDS_ESCAPE = /["\\]/;

function arrayElement(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return encodeParam(v)!;
  const s = encodeParam(v);
  if (s === null) return "NULL";
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** Parses a one-dimensional array literal's elements (null for NULL), before typing them. */
export function parseArrayText(text: string): (string | null)[] {
  const out: (string | null)[] = [];
  if (text === "{}") return out;
  let i = 1;
  while (i < text.length) {
    if (text[i] === '"') {
      let s = "";
      i++;
      while (text[i] !== '"') {
        if (text[i] === "\\") i++;
        s += text[i++];
      }
      out.push(s);
      i++;
    } else {
      let j = i;
      while (text[j] !== "," && text[j] !== "}") j++;
      const s = text.slice(i, j);
      out.push(s === "NULL" ? null : s);
      i = j;
    }
    i++; // the comma or the closing brace
  }
  return out;
}

/**
 * A one-dimensional int2/int4 array literal's elements, read without a string per element:
 * PostgreSQL writes them unquoted, NULL for null.
 */
export function parseIntArrayText(text: string): (number | null)[] {
  const out: (number | null)[] = [];
  let n = 0;
  let negative = false;
  let digits = false;
  // An array whose lower bound is not 1 comes decorated: "[0:1]={7,8}".
  const open = text.indexOf("{");
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      n = n * 10 + c - 48;
      digits = true;
    } else if (c === 45) negative = true;
    else if (c === 44 || c === 125) { // "," or "}"
      if (digits) out.push(negative ? -n : n);
      else if (i > open + 1) out.push(null); // NULL (not the "}" of "{}")
      n = 0;
      negative = false;
      digits = false;
    }
  }
  return out;
}

export type Decode = (text: string) => unknown;
const asNumber: Decode = Number;
const asText: Decode = (t) => t;
const SCALARS: Record<number, Decode> = {
  16: (t) => t === "t", // bool
  21: asNumber, // int2
  23: asNumber, // int4
  26: asNumber, // oid
  700: asNumber, // float4
  701: asNumber, // float8
  114: JSON.parse, // json
  3802: JSON.parse, // jsonb
};
// Array types by their element type; element types not named decode as text, like int8
// and numeric, which postgres.js also answers as strings.
const ARRAYS: Record<number, number> = {
  1000: 16,
  1005: 21,
  1007: 23,
  1021: 700,
  1022: 701,
  1009: 25,
  1015: 1043,
  1016: 20,
  2951: 2950,
  199: 114,
  3807: 3802,
};

/** The decoder of a column's type: the values postgres.js gives for the same type. */
export function decoderFor(oid: number): Decode {
  const scalar = SCALARS[oid];
  if (scalar) return scalar;
  const element = ARRAYS[oid];
  if (element === undefined) return asText;
  if (element === 21 || element === 23) return parseIntArrayText;
  const each = SCALARS[element] ?? asText;
  return (t) => parseArrayText(t).map((e) => e === null ? null : each(e));
}

export interface Column {
  name: string;
  decode: Decode;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `bytes[from, to)` as UTF-8 text; short ASCII (flags, tiers, numbers) read in JavaScript. */
export function utf8(bytes: Uint8Array, from: number, to: number): string {
  if (to - from <= SHORT_READ) {
    let s = "";
    for (let i = from; i < to; i++) {
      const c = bytes[i];
      if (c >= 0x80) return decoder.decode(bytes.subarray(from, to));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoder.decode(bytes.subarray(from, to));
}

function cstring(body: Uint8Array, at: number): [string, number] {
  const end = body.indexOf(0, at);
  return [utf8(body, at, end), end + 1];
}

export function describe(body: Uint8Array): Column[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = view.getInt16(0);
  const columns: Column[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const [name, next] = cstring(body, at);
    const oid = view.getInt32(next + 6);
    columns.push({ name, decode: decoderFor(oid) });
    at = next + 18;
  }
  return columns;
}

export function row(body: Uint8Array, columns: Column[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let at = 2;
  for (const c of columns) {
    const len = (body[at] << 24) | (body[at + 1] << 16) | (body[at + 2] << 8) | body[at + 3];
    at += 4;
    if (len < 0) {
      out[c.name] = null;
      continue;
    }
    out[c.name] = c.decode(utf8(body, at, at + len));
    at += len;
  }
  return out;
}

export function errorOf(body: Uint8Array): WireError {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const key = String.fromCharCode(body[at]);
    const [value, next] = cstring(body, at + 1);
    fields[key] = value;
    at = next;
  }
  return new WireError(fields.C ?? "XX000", fields.M ?? "unknown error", fields.D);
}
