/** Running instances: registered at start, heartbeating, removed on a clean shutdown. */
import type { Db, Queryable } from "./client.ts";
import type { Logger } from "../lib/log.ts";
import { errorFields } from "../lib/log.ts";

/** What an instance runs: the HTTP API alone, or the API and the job worker. */
export type InstanceRole = "api" | "api+worker";

/** One instance row as /ops/services shows it. */
export interface InstanceRow {
  id: string;
  role: InstanceRole;
  version: string;
  hostname: string | null;
  pid: number | null;
  startedAt: Date;
  heartbeatAt: Date;
}

/** How often an instance heartbeats. */
export const HEARTBEAT_INTERVAL_MS = 5_000;

/** An instance silent for longer than this is stale (three missed heartbeats). */
export const INSTANCE_STALE_MS = 3 * HEARTBEAT_INTERVAL_MS;

/** Rows of instances silent this long are dropped (a killed process never deregisters). */
const INSTANCE_FORGET_MS = 24 * 60 * 60 * 1000;

/** Registers (or re-registers) an instance. */
export async function upsertInstance(q: Queryable, row: InstanceRow): Promise<void> {
  await q.query(
    `insert into instances (id, role, version, hostname, pid, started_at, heartbeat_at)
     values ($1, $2, $3, $4, $5, $6, $7)
     on conflict (id) do update set heartbeat_at = excluded.heartbeat_at`,
    [row.id, row.role, row.version, row.hostname, row.pid, row.startedAt, row.heartbeatAt],
  );
}

/** Records a heartbeat; re-inserts the row if it was removed meanwhile. */
export async function touchInstanceHeartbeat(
  q: Queryable,
  row: InstanceRow,
  at: Date,
): Promise<void> {
  await upsertInstance(q, { ...row, heartbeatAt: at });
}

/** Removes an instance (clean shutdown). */
export async function deleteInstance(q: Queryable, id: string): Promise<void> {
  await q.query("delete from instances where id = $1", [id]);
}

/** Drops instances silent since before `before`. */
export async function deleteInstancesSilentSince(q: Queryable, before: Date): Promise<void> {
  await q.query("delete from instances where heartbeat_at < $1", [before]);
}

/** Every registered instance, most recently started first. */
export async function listInstances(q: Queryable): Promise<InstanceRow[]> {
  const rows = await q.query<Record<string, unknown>>(
    `select id, role, version, hostname, pid, started_at, heartbeat_at
       from instances order by started_at desc, id desc`,
  );
  return rows.map((r) => ({
    id: String(r.id),
    role: r.role as InstanceRole,
    version: String(r.version),
    hostname: r.hostname === null ? null : String(r.hostname),
    pid: r.pid === null ? null : Number(r.pid),
    startedAt: new Date(r.started_at as Date),
    heartbeatAt: new Date(r.heartbeat_at as Date),
  }));
}

/** A running heartbeat; `stop()` ends it and deregisters the instance. */
export interface Heartbeat {
  stop(): Promise<void>;
}

function hostnameOrNull(): string | null {
  try {
    return Deno.hostname();
  } catch {
    return null; // no --allow-sys, or a platform without one (Deno Deploy)
  }
}

/**
 * Registers this instance and heartbeats every `intervalMs` using the app clock `now`
 * (the same clock /ops/services judges staleness by). A failed beat is logged and retried
 * on the next tick: a database outage must not stop the process.
 */
export async function startHeartbeat(
  db: Db,
  self: { id: string; role: InstanceRole; version: string; startedAt: number },
  now: () => number,
  log: Logger,
  intervalMs = HEARTBEAT_INTERVAL_MS,
): Promise<Heartbeat> {
  const row: InstanceRow = {
    id: self.id,
    role: self.role,
    version: self.version,
    hostname: hostnameOrNull(),
    pid: Deno.pid,
    startedAt: new Date(self.startedAt),
    heartbeatAt: new Date(now()),
  };
  await upsertInstance(db, row);
  let failing = false; // log the first failed beat and the recovery, not every beat between
  const beat = async () => {
    try {
      await touchInstanceHeartbeat(db, row, new Date(now()));
      await deleteInstancesSilentSince(db, new Date(now() - INSTANCE_FORGET_MS));
      if (failing) log.info("heartbeat recovered", { instanceId: self.id });
      failing = false;
    } catch (err) {
      if (!failing) log.warn("heartbeat failed", { instanceId: self.id, ...errorFields(err) });
      failing = true;
    }
  };
  let inFlight: Promise<void> | null = null; // a slow beat is not overlapped by the next
  const timer = setInterval(() => {
    inFlight ??= beat().finally(() => inFlight = null);
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
      await deleteInstance(db, self.id).catch((err) =>
        log.warn("deregistering the instance failed", errorFields(err))
      );
    },
  };
}
