/** PostgreSQL (postgres.js, pooled) or embedded PGlite behind one small interface. */
import postgres from "postgres";
import { PGlite } from "@electric-sql/pglite";
import { initialiseInWorker, isInitialised, PGLITE_OPTIONS } from "./pglite_init.ts";
import { holdDataDir } from "./data_dir.ts";
import { openWireConnection, refusedConnecting, type WireConnection, wireTarget } from "./wire.ts";

/** A row as the drivers return it. */
export type Row = Record<string, unknown>;

/** Anything that runs parameterised SQL: the pool or a transaction. */
export interface Queryable {
  /** Runs one parameterised statement and returns its rows. */
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** True when a statement reaches the socket as it is sent (db/gate.ts pads it otherwise). */
  readonly writesAtOnce?: boolean;
}

/** The database handle built once in main and passed to everything that needs storage. */
export interface Db extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribes to NOTIFY on `channel`; resolves to an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Where the request gate sends its statements: on PostgreSQL a connection of its own with
   * a leaner client (db/wire.ts) when the URL allows; absent: the pool.
   */
  readonly gateConnection?: Queryable;
  /** Answers when the database is reachable; throws DbUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The database could not be reached: answered as 503, never as 500. */
export class DbUnavailableError extends Error {
  override name = "DbUnavailableError";
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
]);

/** True for errors that mean "the database is not there", not "the query was wrong". */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof DbUnavailableError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return UNAVAILABLE_CODES.has(code) || code.startsWith("08");
}

function mapError(err: unknown): unknown {
  if (isUnavailable(err) && !(err instanceof DbUnavailableError)) {
    return new DbUnavailableError(`database unavailable: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return err;
}

/**
 * Wraps queries so that `report` hears of transitions only: once when the database stops
 * answering, once when it answers again. A transition needs evidence gathered after the
 * previous one: a query that was already under way when the database came back (or went)
 * and settles late says nothing new, and would otherwise report a second outage that never
 * happened (seen in CI: a query queued during the outage failed just after recovery).
 */
export function availabilityTracker(
  report?: (up: boolean, err?: unknown) => void,
): <T>(p: Promise<T>) => Promise<T> {
  let up = true;
  let epoch = 0;
  const flip = (now: boolean, err?: unknown) => {
    up = now;
    epoch++;
    report?.(now, err);
  };
  return async (p) => {
    const startedIn = epoch;
    try {
      const out = await p;
      if (!up && startedIn === epoch) flip(true);
      return out;
    } catch (err) {
      const mapped = mapError(err);
      if (mapped instanceof DbUnavailableError && up && startedIn === epoch) flip(false, mapped);
      throw mapped;
    }
  };
}

/** Options of the PostgreSQL pool. */
export interface PostgresOptions {
  max?: number;
  connectTimeoutSeconds?: number;
  /** Called once when the database stops answering and once when it answers again. */
  onAvailability?: (up: boolean, err?: unknown) => void;
}

// Every statement here is a short lookup or update by key, prepared once per connection.
// PostgreSQL would otherwise plan most of them afresh on every run (a custom plan per
// parameter set): 40 % of the request gate's statement time, measured.
const CONNECTION_PARAMS = { application_name: "proplab", plan_cache_mode: "force_generic_plan" };

/**
 * A libpq-style unix socket URL (`postgres://user@localhost/db?host=/run/postgresql`) in the
 * form postgres.js takes: it would send `host` to the server as a setting (42704) and connect
 * over TCP; the socket is its `path` option.
 */
export function socketOption(url: string): { url: string; path?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url };
  }
  const dir = u.searchParams.get("host");
  if (!dir?.startsWith("/")) return { url };
  u.searchParams.delete("host");
  return { url: u.href, path: `${dir}/.s.PGSQL.${u.port || 5432}` };
}

/** Opens a pooled PostgreSQL connection (lazy: nothing connects until the first query). */
export function openPostgres(url: string, opts: PostgresOptions = {}): Db {
  const socket = socketOption(url);
  const sql = postgres(socket.url, {
    ...(socket.path ? { path: socket.path } : {}),
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutSeconds ?? 2,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    // Seconds before a closed connection reconnects. The default grows with every failure,
    // shared by the pool, up to 20 s, and a query handed to that connection waits it out:
    // requests hung during an outage and for seconds after it. Short and jittered instead,
    // so a query fails fast (→ 503) while the database is away and runs as soon as it is back.
    backoff: () => 0.05 + Math.random() * 0.2,
    onnotice: () => {},
    connection: CONNECTION_PARAMS,
    types: {
      // JSON parameters are passed as JSON text (`$1::jsonb` with JSON.stringify(value)), as
      // PGlite takes them; postgres.js would otherwise encode the string a second time.
      jsonText: {
        to: 3802,
        from: [114, 3802],
        serialize: (x: unknown) => typeof x === "string" ? x : JSON.stringify(x),
        parse: (x: string) => JSON.parse(x),
      },
    },
  });
  const track = availabilityTracker(opts.onAvailability);
  const wrap = (q: postgres.Sql | postgres.TransactionSql): Queryable => ({
    query: <T>(text: string, params: readonly unknown[] = []) =>
      track(
        q.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true }) as Promise<
          unknown
        > as Promise<T[]>,
      ),
    exec: (script: string) => track(q.unsafe(script).then(() => {})),
  });
  const pool = wrap(sql);
  const target = wireTarget(url);
  const wire = target &&
    openWireConnection(target, {
      connectTimeoutMs: (opts.connectTimeoutSeconds ?? 2) * 1000,
      params: { ...CONNECTION_PARAMS, client_encoding: "UTF8" },
    });
  return {
    kind: "postgres",
    ...pool,
    gateConnection: wire ? orPool(wire, pool, track) : undefined,
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const conn = { lost: false };
      const done = sql.begin((tx) => runOnLiveConnection(wrap(tx), fn, conn)) as Promise<T>;
      // begin() rejects as soon as its connection closes, even between two statements.
      done.catch((err) => conn.lost ||= isUnavailable(mapError(err)));
      return track(done);
    },
    async listen(channel, onPayload) {
      const sub = await sql.listen(channel, onPayload).catch((err) => {
        throw mapError(err);
      });
      return () => sub.unlisten();
    },
    async ping() {
      await pool.query("select 1");
    },
    async close() {
      await wire?.close();
      await sql.end({ timeout: 5 });
    },
  };
}

/**
 * The gate's own connection, tracked like the pool, until the server turns its way of
 * connecting down (an authentication method or option db/wire.ts does not speak): from then
 * on the pool, which may still get in (with a password from PGPASSWORD, say).
 */
function orPool(
  wire: WireConnection,
  pool: Queryable,
  track: <T>(p: Promise<T>) => Promise<T>,
): Queryable {
  let usePool = false;
  return {
    get writesAtOnce() {
      return !usePool;
    },
    async query<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
      if (usePool) return await pool.query<T>(text, params);
      try {
        return await track(wire.query<T>(text, params));
      } catch (err) {
        if (!refusedConnecting(err)) throw err;
        usePool = true;
        await wire.close();
        return await pool.query<T>(text, params);
      }
    },
    exec: (script) => pool.exec(script),
  };
}

const NEVER = new Promise<never>(() => {});

/**
 * Runs a transaction body so that nothing more is sent on its connection once the database
 * dropped it. postgres.js 3.4.9 answers a failed body by writing ROLLBACK to the same
 * connection; when that connection has closed, its socket is null and the write throws from
 * a timer, uncaught, killing the process (seen in the outage soak). So after an
 * "unavailable" error the body neither queries again nor settles: the driver sends nothing,
 * and `begin()` itself rejects with CONNECTION_CLOSED through its own close handler, which
 * is what the caller gets. Such an error always means the connection is gone (08xxx, 57P0x,
 * reset, closed), so no live connection is held by the unsettled body.
 */
async function runOnLiveConnection<T>(
  tx: Queryable,
  fn: (tx: Queryable) => Promise<T>,
  conn: { lost: boolean },
) {
  const guard = <R>(run: () => Promise<R>): Promise<R> => {
    if (conn.lost) return Promise.reject(new DbUnavailableError("database connection lost"));
    return run().catch((err) => {
      conn.lost ||= isUnavailable(err);
      throw err;
    });
  };
  const guarded: Queryable = {
    query: (text, params) => guard(() => tx.query(text, params)),
    exec: (script) => guard(() => tx.exec(script)),
  };
  try {
    const out = await fn(guarded);
    // Closed after the last statement: COMMIT would be written to the dead connection.
    return conn.lost ? await NEVER : out;
  } catch (err) {
    if (conn.lost || isUnavailable(err)) return await NEVER;
    throw err;
  }
}

/**
 * Opens an embedded PGlite database in `dataDir`; `null` = in memory. A new directory is
 * created first in a worker of its own (db/pglite_init.ts), so initdb's memory goes with it;
 * `onCreate` hears of it first (it takes seconds).
 */
export async function openPglite(dataDir: string | null, onCreate = () => {}): Promise<Db> {
  const release = dataDir === null ? () => {} : await holdDataDir(dataDir);
  let pg: PGlite;
  try {
    if (dataDir !== null && !(await isInitialised(dataDir))) {
      onCreate();
      await initialiseInWorker(dataDir);
    }
    pg = dataDir === null
      ? await PGlite.create(PGLITE_OPTIONS)
      : await PGlite.create(dataDir, PGLITE_OPTIONS);
  } catch (err) {
    release();
    throw err;
  }
  const wrap = (q: Pick<PGlite, "query" | "exec">): Queryable => ({
    async query<T>(text: string, params: readonly unknown[] = []) {
      const res = await q.query<T>(text, params as unknown[]);
      return res.rows;
    },
    async exec(script: string) {
      await q.exec(script);
    },
  });
  const self = wrap(pg);
  return {
    kind: "pglite",
    ...self,
    transaction: (fn) => pg.transaction((tx) => fn(wrap(tx))),
    listen: (channel, onPayload) => pg.listen(channel, onPayload),
    async ping() {
      await self.query("select 1");
    },
    async close() {
      if (!pg.closed) await pg.close();
      release();
    },
  };
}

/**
 * postgres.js reconnects its LISTEN connection in the background; when the database is
 * gone that attempt can reject where no caller awaits it. Such "database unreachable"
 * rejections are expected during an outage and must not take the process down: this
 * logs them at debug level and lets every other unhandled rejection through.
 * Returns a function that removes the listener.
 */
export function absorbBackgroundDisconnects(log: (msg: string, err: unknown) => void): () => void {
  const onRejection = (e: PromiseRejectionEvent) => {
    if (!isUnavailable(e.reason)) return;
    e.preventDefault();
    log("background database reconnect failed", e.reason);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => globalThis.removeEventListener("unhandledrejection", onRejection);
}
