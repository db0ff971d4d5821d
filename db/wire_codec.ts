/**
 * The PostgreSQL wire protocol as db/wire.ts speaks it, without I/O: which URLs it can serve,
 * frontend messages, and the backend's rows and errors (values: db/wire_values.ts).
 */
import { type Decode, decoderFor, encodeParam, encoder, put, utf8 } from "./wire_values.ts";

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
    int32At(b, 0, n);
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
