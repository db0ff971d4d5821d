/**
 * A small PostgreSQL client for the request gate's statements (db/gate.ts): one connection
 * over `Deno.connect`, the extended protocol with a named prepared statement per text, text
 * parameters and results. It exists for speed: the gate sends one statement per tick on
 * every request's path, and postgres.js spends ~120 µs of the main thread on each (node
 * streams, Buffer copies, a write deferred to `setImmediate`); see README, Performance.
 *
 * It speaks only what the gate needs: plain TCP or a unix socket, trust, password, md5 or
 * SCRAM-SHA-256. `wireTarget()` answers null for a URL it cannot serve (TLS, unknown
 * options), and a connection the server refuses to authenticate this way throws
 * WireUnsupported: the caller then uses postgres.js for the gate too.
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { DbUnavailableError, type Queryable } from "./client.ts";
import { withTimeout } from "../lib/async.ts";
import {
  bindMessage,
  type Column,
  concat,
  describe,
  DESCRIBE_PORTAL,
  errorOf,
  EXECUTE,
  Message,
  row,
  SYNC,
  WireError,
  type WireTarget,
  WireUnsupported,
} from "./wire_codec.ts";
import { decoder, encoder } from "./wire_values.ts";

export { WireError, type WireTarget, wireTarget, WireUnsupported } from "./wire_codec.ts";

interface Pending {
  statement: string;
  /** The server has parsed the statement (ParseComplete), if this query sent it. */
  parsed: boolean;
  columns: Column[] | null;
  rows: Record<string, unknown>[];
  error: WireError | null;
  resolve(rows: Record<string, unknown>[]): void;
  reject(err: unknown): void;
}

/** One open connection: statements are pipelined and answered in order. */
class Connection {
  private buf = new Uint8Array(64 * 1024);
  // Unread bytes are buf[readAt, len).
  private readAt = 0;
  private len = 0;
  private writing: Promise<void> = Promise.resolve();
  private queue: Pending[] = [];
  private described = new Map<string, Column[]>();
  private names = new Map<string, string>();
  private closed = false;
  private prepared = 0;

  constructor(private conn: Deno.Conn) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Reads messages until ReadyForQuery after startup; then answers queries in `loop`. */
  async start(target: WireTarget, params: Record<string, string>): Promise<void> {
    const startup = new Message().int32(196608);
    for (
      const [k, v] of Object.entries({ user: target.user, database: target.database, ...params })
    ) {
      startup.cstr(k).cstr(v);
    }
    await this.write(startup.byte(0).end(0));
    const scram = { nonce: "", authMessage: "", salted: new Uint8Array() };
    for (;;) {
      const [type, body] = await this.next();
      if (type === 0x45) throw errorOf(body);
      if (type === 0x5a) break; // ReadyForQuery
      if (type !== 0x52) continue; // ParameterStatus, BackendKeyData, notices
      const kind = new DataView(body.buffer, body.byteOffset).getInt32(0);
      if (kind === 0) continue;
      await this.authenticate(kind, body.subarray(4), target, scram);
    }
    void this.loop();
  }

  private async authenticate(
    kind: number,
    data: Uint8Array,
    target: WireTarget,
    scram: { nonce: string; authMessage: string; salted: Uint8Array },
  ): Promise<void> {
    const password = target.password;
    const needs = () => {
      if (password === null) throw new WireUnsupported("the server asks for a password");
      return password;
    };
    if (kind === 3) {
      await this.write(new Message().cstr(needs()).end(0x70));
    } else if (kind === 5) {
      const inner = createHash("md5").update(needs() + target.user).digest("hex");
      const outer = createHash("md5").update(inner).update(data.subarray(0, 4)).digest("hex");
      await this.write(new Message().cstr(`md5${outer}`).end(0x70));
    } else if (kind === 10) {
      const mechanisms = decoder.decode(data).split("\0");
      if (!mechanisms.includes("SCRAM-SHA-256")) {
        throw new WireUnsupported(`unsupported SASL mechanisms: ${mechanisms.join(" ")}`);
      }
      needs();
      scram.nonce = randomBytes(18).toString("base64");
      const first = encoder.encode(`n,,n=*,r=${scram.nonce}`);
      await this.write(
        new Message().cstr("SCRAM-SHA-256").int32(first.length).raw(first).end(0x70),
      );
    } else if (kind === 11) {
      const server = decoder.decode(data);
      const f = Object.fromEntries(server.split(",").map((p) => [p[0], p.slice(2)]));
      if (!f.r?.startsWith(scram.nonce)) throw new WireUnsupported("SCRAM: bad server nonce");
      scram.salted = pbkdf2Sync(needs(), Buffer.from(f.s, "base64"), Number(f.i), 32, "sha256");
      const clientKey = createHmac("sha256", scram.salted).update("Client Key").digest();
      const storedKey = createHash("sha256").update(clientKey).digest();
      const withoutProof = `c=biws,r=${f.r}`;
      scram.authMessage = `n=*,r=${scram.nonce},${server},${withoutProof}`;
      const signature = createHmac("sha256", storedKey).update(scram.authMessage).digest();
      const proof = clientKey.map((b, i) => b ^ signature[i]);
      const final = `${withoutProof},p=${Buffer.from(proof).toString("base64")}`;
      await this.write(new Message().raw(encoder.encode(final)).end(0x70));
    } else if (kind === 12) {
      const serverKey = createHmac("sha256", scram.salted).update("Server Key").digest();
      const expected = createHmac("sha256", serverKey).update(scram.authMessage).digest();
      const got = Buffer.from(decoder.decode(data).replace(/^v=/, "").trim(), "base64");
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        throw new WireUnsupported("SCRAM: the server's signature does not match");
      }
    } else {
      throw new WireUnsupported(`unsupported authentication request ${kind}`);
    }
  }

  /** Sends one statement: parsed and described the first time its text is seen. */
  query(text: string, params: readonly unknown[]): Promise<Record<string, unknown>[]> {
    if (this.closed) return Promise.reject(new DbUnavailableError("gate connection closed"));
    let name = this.names.get(text);
    const parts: Uint8Array[] = [];
    const fresh = name === undefined;
    if (fresh) {
      name = `proplab_gate_${++this.prepared}`;
      this.names.set(text, name);
      parts.push(new Message().cstr(name).cstr(text).int16(0).end(0x50));
    }
    parts.push(bindMessage(name!, params));
    if (!this.described.has(name!)) parts.push(DESCRIBE_PORTAL);
    parts.push(EXECUTE, SYNC);
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        statement: name!,
        parsed: false,
        columns: this.described.get(name!) ?? null,
        rows: [],
        error: null,
        resolve,
        reject: (err) => {
          // A statement whose Parse failed is not prepared: parse it again next time.
          if (fresh && !pending.parsed) this.names.delete(text);
          reject(err);
        },
      };
      this.queue.push(pending);
      this.write(concat(parts)).catch((err) => this.fail(err));
    });
  }

  close(): void {
    if (this.closed) return;
    this.conn.write(new Message().end(0x58)).catch(() => {}); // Terminate
    this.fail(new DbUnavailableError("gate connection closed"));
  }

  // Closes the socket and rejects every statement still waiting.
  private fail(err: unknown): void {
    const mapped = err instanceof WireError || err instanceof DbUnavailableError
      ? err
      : new DbUnavailableError(`gate connection lost: ${(err as Error)?.message ?? err}`);
    if (!this.closed) {
      this.closed = true;
      try {
        this.conn.close();
      } catch {
        // already closed
      }
    }
    for (const p of this.queue.splice(0)) p.reject(mapped);
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        const [type, body] = await this.next();
        this.handle(type, body);
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private handle(type: number, body: Uint8Array): void {
    const p = this.queue[0];
    switch (type) {
      case 0x54: // RowDescription
        if (p) {
          p.columns = describe(body);
          this.described.set(p.statement, p.columns);
        }
        return;
      case 0x44: // DataRow
        if (p?.columns) p.rows.push(row(body, p.columns));
        return;
      case 0x31: // ParseComplete
        if (p) p.parsed = true;
        return;
      case 0x6e: // NoData
        if (p) {
          p.columns = [];
          this.described.set(p.statement, p.columns);
        }
        return;
      case 0x45: // ErrorResponse
        if (p) p.error = errorOf(body);
        return;
      case 0x5a: // ReadyForQuery: the statement is done
        this.queue.shift();
        if (!p) return;
        if (p.error) p.reject(p.error);
        else p.resolve(p.rows);
        return;
      default: // ParseComplete, BindComplete, CommandComplete, notices, parameter changes
        return;
    }
  }

  // Writes in order: a message is never interleaved with another's partial write.
  private write(bytes: Uint8Array): Promise<void> {
    this.writing = this.writing.then(async () => {
      let at = 0;
      while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
    });
    return this.writing;
  }

  // The next whole message, reading more until one is there. Its body is a view of the
  // read buffer, valid until the next call.
  private async next(): Promise<[number, Uint8Array]> {
    for (;;) {
      const have = this.len - this.readAt;
      if (have >= 5) {
        const size = new DataView(this.buf.buffer).getInt32(this.readAt + 1) + 1;
        if (have >= size) {
          const at = this.readAt;
          this.readAt += size;
          if (this.readAt === this.len) this.readAt = this.len = 0;
          return [this.buf[at], this.buf.subarray(at + 5, at + size)];
        }
        if (size > this.buf.length) {
          const bigger = new Uint8Array(size * 2);
          bigger.set(this.buf.subarray(this.readAt, this.len));
          this.buf = bigger;
          this.len = have;
          this.readAt = 0;
        }
      }
      if (this.readAt > 0 && this.len === this.buf.length) {
        this.buf.copyWithin(0, this.readAt, this.len);
        this.len = have;
        this.readAt = 0;
      }
      const n = await this.conn.read(this.buf.subarray(this.len));
      if (n === null) throw new DbUnavailableError("the database closed the gate connection");
      this.len += n;
    }
  }
}
/** Options of the gate's connection. */
export interface WireOptions {
  connectTimeoutMs: number;
  /** Run-time parameters sent at startup (application_name, plan_cache_mode…). */
  params: Record<string, string>;
}

/** A lazily (re)connected single connection, as a Queryable (no `exec`: statements only). */
export interface WireConnection extends Queryable {
  close(): Promise<void>;
}

/** True when the server turned down this client's way of connecting, not the database. */
export function refusedConnecting(err: unknown): boolean {
  return err instanceof WireUnsupported || (err instanceof WireError && err.code.startsWith("28"));
}

/** Opens the gate's connection lazily: the first query connects, a lost one reconnects. */
export function openWireConnection(target: WireTarget, opts: WireOptions): WireConnection {
  let ended = false;
  const connect = async (): Promise<Connection> => {
    const opening: Promise<Deno.Conn> = target.socketPath
      ? Deno.connect({ transport: "unix", path: target.socketPath })
      : Deno.connect({ hostname: target.hostname, port: target.port }).then((c) => {
        c.setNoDelay(true);
        return c;
      });
    const conn = await withTimeout(opening, opts.connectTimeoutMs, "connecting timed out").catch(
      (err) => {
        throw new DbUnavailableError(`gate connection failed: ${err?.message ?? err}`);
      },
    );
    const wire = new Connection(conn);
    try {
      await withTimeout(
        wire.start(target, opts.params),
        opts.connectTimeoutMs,
        "logging in timed out",
      );
    } catch (err) {
      wire.close();
      if (err instanceof WireError || err instanceof WireUnsupported) throw err;
      throw new DbUnavailableError(`gate connection failed: ${(err as Error)?.message ?? err}`);
    }
    return wire;
  };
  // The open connection, or the one being opened: never two at once.
  let live: Connection | null = null;
  let opening: Promise<Connection> | null = null;
  const connection = (): Promise<Connection> => {
    if (ended) return Promise.reject(new DbUnavailableError("gate connection closed"));
    opening ??= connect().then((c) => {
      if (ended) c.close();
      else live = c;
      return c;
    }).finally(() => opening = null);
    return opening;
  };
  return {
    writesAtOnce: true,
    query<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
      const c = !ended && live && !live.isClosed ? live : null;
      if (c) return c.query(text, params) as Promise<T[]>;
      return connection().then((c) => c.query(text, params) as Promise<T[]>);
    },
    exec(): Promise<void> {
      return Promise.reject(new Error("the gate's connection runs statements only"));
    },
    async close() {
      ended = true;
      live?.close();
      await opening?.catch(() => null);
    },
  };
}
