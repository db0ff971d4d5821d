/**
 * Shared pieces of the soak tests: their duration, a scratch PostgreSQL database, run-time
 * settings, and real-credential HTTP calls against `proplab serve` child processes.
 */
import { type Db, openPostgres } from "../db/client.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";
import { upsertSetting } from "../db/settings.ts";
import type { SettingKey } from "../lib/settings.ts";
import { createScratchDatabase } from "../tests/support/db.ts";
import type { ServerProcess } from "../tests/support/process.ts";

/** Seconds of each soak phase (`SOAK_SECONDS`, default 3: the short form CI runs). */
export const SOAK_SECONDS = Math.max(1, Number(Deno.env.get("SOAK_SECONDS") ?? 3) || 3);

/** A fresh database on the PostgreSQL of DATABASE_URL; `migrated` applies the migrations. */
export async function scratchDatabase(migrated = true): Promise<{ url: string; db: Db }> {
  const url = await createScratchDatabase();
  const db = openPostgres(url, { max: 4 });
  if (migrated) await migrate(db, await loadMigrations());
  return { url, db };
}

/** Writes run-time settings straight to the database (servers started later read them). */
export async function setSettings(
  db: Db,
  values: Partial<Record<SettingKey, unknown>>,
): Promise<void> {
  for (const [key, value] of Object.entries(values)) {
    await upsertSetting(db, key as SettingKey, value, "soak");
  }
}

/** Limits high enough that steady load is never refused for its rate. */
export const NO_LIMITS: Partial<Record<SettingKey, unknown>> = {
  "ratelimit.sharp.perMinute": 1_000_000,
  "ratelimit.sharp.perDay": 1_000_000,
  "ratelimit.login.perEmailIp": 1_000_000,
  "ratelimit.login.perIp": 1_000_000,
  "ratelimit.ops.perMinute": 1_000_000,
};

/** Logs `user` in over HTTP; returns the access token and the session id it carries. */
export async function login(
  base: string,
  user: { email: string; password: string },
): Promise<{ accessToken: string; sessionId: string }> {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: user.email, password: user.password }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`login answered ${res.status}: ${text}`);
  const { accessToken } = JSON.parse(text);
  return { accessToken, sessionId: sessionIdOf(accessToken) };
}

/** The `sid` claim of an access token (decoded only; the server verified it). */
export function sessionIdOf(jwt: string): string {
  const payload = jwt.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
  return JSON.parse(atob(payload)).sid;
}

/** POST with a JSON body, credential headers and an optional Idempotency-Key. */
export function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  idempotencyKey?: string,
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...headers,
      ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}),
    },
    body: JSON.stringify(body),
  });
}

/**
 * Repeats an idempotent request until it is final: waits out 409 (Retry-After) and 503, the
 * way a well-behaved client retries with the same key. Returns the final answer.
 */
export async function retryUntilFinal(
  send: () => Promise<Response>,
  timeoutMs = 20_000,
): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await send();
    if ((res.status !== 409 && res.status !== 503) || Date.now() > deadline) return res;
    const wait = Math.min(Number(res.headers.get("retry-after") ?? 1), 2) * 1000;
    await res.body?.cancel();
    await sleep(wait / 4);
  }
}

import { sleep } from "../tests/support/wait.ts";
export { sleep, waitUntil } from "../tests/support/wait.ts";

/** Lines of a child's output that mean it crashed or leaked a rejection. */
export function crashLines(p: ServerProcess): string[] {
  return p.output().split("\n").filter((l) =>
    /Uncaught|unhandled ?rejection|panicked|"msg":"unhandled error"/i.test(l)
  );
}

/** Tracks whether a child process is still running. */
export function liveness(p: ServerProcess): { alive(): boolean } {
  let exited = false;
  p.child.status.then(() => exited = true);
  return { alive: () => !exited };
}

const PG_BIN_ROOT = "/usr/lib/postgresql";

/** True when this process may run its own PostgreSQL cluster (root, server binaries installed). */
export function canRunOwnCluster(): boolean {
  try {
    return Deno.uid() === 0 && [...Deno.readDirSync(PG_BIN_ROOT)].length > 0;
  } catch {
    return false;
  }
}

/** A throwaway PostgreSQL cluster owned by one test, to stop and start for real. */
export interface OwnCluster {
  url: string;
  /** `pg_ctl stop -m fast`: sessions are terminated (57P01), new connections refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** Starts a cluster with scripts/pg-throwaway.sh and drives it with pg_ctl. */
export async function startOwnCluster(): Promise<OwnCluster> {
  const script = new URL("../scripts/pg-throwaway.sh", import.meta.url).pathname;
  const printed = await run("bash", [script]);
  const dir = printed.match(/^PGDIR=(.*)$/m)![1];
  const url = printed.match(/^DATABASE_URL=(.*)$/m)![1];
  const versions = [...Deno.readDirSync(PG_BIN_ROOT)].map((e) => e.name)
    .sort((a, b) => Number(a) - Number(b));
  const pgCtl = `${PG_BIN_ROOT}/${versions.at(-1)}/bin/pg_ctl`;
  const port = new URL(url).port;
  // The same server options as pg-throwaway.sh starts it with.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=300 ` +
    `-c fsync=off`;
  const pgCtlAs = (...args: string[]) =>
    run("runuser", ["-u", "postgres", "--", pgCtl, "-D", `${dir}/data`, ...args]);
  return {
    url,
    stop: async () => void await pgCtlAs("-m", "fast", "-w", "stop"),
    start: async () => void await pgCtlAs("-l", `${dir}/server.log`, "-w", "-o", opts, "start"),
    async destroy() {
      await run("bash", [script, "stop", dir]);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The login body for a fixture user: only the fields POST /auth/login accepts. */
export function credentialsOf(user: { email: string; password: string }) {
  return { email: user.email, password: user.password };
}
