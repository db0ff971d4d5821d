/**
 * Database faults: a real `proplab serve` process under steady load on PostgreSQL while the
 * database goes away for SOAK_SECONDS and comes back (SPEC §9, issue 9): once cut at the TCP
 * level (a proxy drops every connection), once really stopped and started with pg_ctl
 * (a dedicated throwaway cluster; sessions end with 57P01 admin_shutdown).
 */
import assert from "node:assert/strict";
import { ON_POSTGRES } from "../tests/support/db.ts";
import { DB_TEST } from "../tests/support/assert.ts";
import { startCutProxy } from "../tests/support/proxy.ts";
import { type ServerProcess, spawnServer } from "../tests/support/process.ts";
import { createApiKey, createOpsToken, createUser } from "../tests/support/fixtures.ts";
import { absorbBackgroundDisconnects, type Db, openPostgres } from "../db/client.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";
import {
  canRunOwnCluster,
  crashLines,
  credentialsOf,
  liveness,
  login,
  NO_LIMITS,
  postJson,
  retryUntilFinal,
  scratchDatabase,
  sessionIdOf,
  setSettings,
  sleep,
  SOAK_SECONDS,
  startOwnCluster,
  waitUntil,
} from "./support.ts";

type Kind = "read" | "login" | "api-key" | "command";

/** One request as a client loop saw it; times in ms since the load started. */
interface Sample {
  kind: Kind;
  start: number;
  end: number;
  status: number;
  problemType: string | null;
  /** Set when fetch itself failed (connection reset, refused): must never happen. */
  networkError?: string;
}

/** What the clients were told was done (2xx), to be found in the database afterwards. */
interface Acked {
  sessions: string[];
  apiKeys: Map<string, { revoked: boolean }>;
  jobs: string[];
  /** Idempotent requests answered 503 or 409, to be retried with the same key at the end. */
  unsettled: {
    send: () => Promise<Response>;
    kind: Kind;
    revoke?: (id: string) => Promise<Response>;
  }[];
}

const OUTAGE_MS = SOAK_SECONDS * 1000;
const BEFORE_MS = SOAK_SECONDS * 1000;
// Long enough to see the 5 s recovery bound and some normal service after it.
const AFTER_MS = Math.max(SOAK_SECONDS * 1000, 7000);

interface Load {
  base: string;
  apiKey: string;
  opsToken: string;
  user: { email: string; password: string };
  accessToken: string;
}

function loadClients(load: Load, t0: number, stopAt: () => boolean) {
  const samples: Sample[] = [];
  const acked: Acked = { sessions: [], apiKeys: new Map(), jobs: [], unsettled: [] };
  const now = () => performance.now() - t0;

  async function timed(kind: Kind, send: () => Promise<Response>): Promise<[Response?, string?]> {
    const start = now();
    try {
      const res = await send();
      const text = await res.text();
      const isProblem = res.headers.get("content-type") === "application/problem+json";
      samples.push({
        kind,
        start,
        end: now(),
        status: res.status,
        problemType: isProblem ? String(JSON.parse(text).type) : null,
      });
      return [res, text];
    } catch (err) {
      samples.push({
        kind,
        start,
        end: now(),
        status: 0,
        problemType: null,
        networkError: `${err} ${(err as Error).cause ?? ""}`,
      });
      return [];
    }
  }

  async function reads() {
    while (!stopAt()) {
      await timed(
        "read",
        () =>
          fetch(`${load.base}/api/v1/data/picks/today`, { headers: { "x-api-key": load.apiKey } }),
      );
      await sleep(10);
    }
  }

  async function logins() {
    while (!stopAt()) {
      const [res, text] = await timed(
        "login",
        () => postJson(`${load.base}/api/v1/auth/login`, credentialsOf(load.user), {}),
      );
      if (res?.status === 200) acked.sessions.push(sessionIdOf(JSON.parse(text!).accessToken));
      await sleep(150); // scrypt is deliberately costly; keep the machine for the others
    }
  }

  async function apiKeys() {
    const auth = { authorization: `Bearer ${load.accessToken}` };
    const revoke = (id: string) =>
      fetch(`${load.base}/api/v1/me/api-keys/${id}`, { method: "DELETE", headers: auth });
    for (let i = 0; !stopAt(); i++) {
      const key = `soak-key-${i}`;
      const send = () => postJson(`${load.base}/api/v1/me/api-keys`, { name: key }, auth, key);
      const [res, text] = await timed("api-key", send);
      if (res?.status === 201) {
        const id = JSON.parse(text!).id;
        acked.apiKeys.set(id, { revoked: false });
        // Revoke it again so the user stays under the active-key limit; also a write to keep.
        const [del] = await timed("api-key", () => revoke(id));
        if (del?.status === 204) acked.apiKeys.set(id, { revoked: true });
      } else if (res) {
        acked.unsettled.push({ send, kind: "api-key", revoke });
      }
      await sleep(40);
    }
  }

  async function commands() {
    const auth = { authorization: `Bearer ${load.opsToken}` };
    for (let i = 0; !stopAt(); i++) {
      const key = `soak-cmd-${i}`;
      const body = { type: "settle", params: { date: "2026-01-15" } };
      const send = () => postJson(`${load.base}/api/v1/ops/commands`, body, auth, key);
      const [res, text] = await timed("command", send);
      if (res?.status === 202) acked.jobs.push(JSON.parse(text!).id);
      else if (res) acked.unsettled.push({ send, kind: "command" });
      await sleep(100);
    }
  }

  const done = Promise.all([reads(), reads(), reads(), logins(), apiKeys(), commands()]);
  return { samples, acked, done };
}

async function prepare(db: Db) {
  await setSettings(db, { ...NO_LIMITS, "idempotency.lockTimeoutSeconds": 2 });
  const user = await createUser(db, { tier: "sharp" });
  const apiKey = await createApiKey(db, user.id);
  const opsToken = await createOpsToken(db, ["ops:commands", "ops:read"]);
  return { user, apiKey, opsToken };
}

/** Settles every idempotent request the outage left unanswered, as a client would. */
async function settle(acked: Acked): Promise<void> {
  for (const { send, kind, revoke } of acked.unsettled) {
    const res = await retryUntilFinal(send);
    const text = await res.text();
    assert.ok(res.status === 201 || res.status === 202, `${kind} retry: ${res.status} ${text}`);
    const id = JSON.parse(text).id;
    if (kind === "command") acked.jobs.push(id);
    else {
      // Revoked again at once, like the load loop does, to stay under the active-key limit.
      const del = await revoke!(id);
      await del.body?.cancel();
      acked.apiKeys.set(id, { revoked: del.status === 204 });
    }
  }
}

async function assertNothingLost(db: Db, acked: Acked): Promise<void> {
  const sessions = await db.query<{ n: number }>(
    `select count(*)::int as n from sessions s
      where s.id = any($1::uuid[]) and exists (select 1 from refresh_tokens r where r.session_id = s.id)`,
    [acked.sessions],
  );
  assert.equal(sessions[0].n, acked.sessions.length, "every acknowledged login has its session");
  const keys = await db.query<{ id: string; revoked: boolean }>(
    "select id, revoked_at is not null as revoked from api_keys where id = any($1::uuid[])",
    [[...acked.apiKeys.keys()]],
  );
  assert.equal(keys.length, acked.apiKeys.size, "every acknowledged API key is stored");
  for (const k of keys) {
    if (acked.apiKeys.get(k.id)!.revoked) assert.ok(k.revoked, `revocation of ${k.id} kept`);
  }
  const stuck = await db.query<{ n: number }>(
    "select count(*)::int as n from idempotency_keys where state = 'in_progress'",
  );
  assert.equal(stuck[0].n, 0, "no idempotency key stays in progress");
  await waitUntil("every acknowledged job to succeed", async () => {
    const rows = await db.query<{ n: number }>(
      "select count(*)::int as n from jobs where id = any($1::uuid[]) and state = 'succeeded'",
      [acked.jobs],
    );
    return rows[0].n === acked.jobs.length;
  }, 30_000);
}

function summarise(samples: Sample[], cutAt: number, restoreAt: number) {
  // Answered while the database was away (a request that spans the restore may succeed).
  const during = samples.filter((s) => s.start >= cutAt + 50 && s.end <= restoreAt);
  const started = samples.filter((s) => s.start >= cutAt && s.start < restoreAt);
  const byStatus: Record<string, number> = {};
  for (const s of during) {
    byStatus[`${s.kind} ${s.status}`] = (byStatus[`${s.kind} ${s.status}`] ?? 0) + 1;
  }
  const kinds: Kind[] = ["read", "login", "api-key", "command"];
  const firstOk = kinds.map((k) =>
    samples.filter((s) => s.kind === k && s.start >= restoreAt && s.status >= 200 && s.status < 300)
      .reduce((min, s) => Math.min(min, s.end), Infinity)
  );
  return {
    total: samples.length,
    duringOutage: during.length,
    byStatus,
    maxOutageLatencyMs: Math.round(Math.max(0, ...started.map((s) => s.end - s.start))),
    recoveryMs: Math.round(Math.max(...firstOk) - restoreAt),
    during,
  };
}

/** A way to take the database away and bring it back. */
interface Outage {
  /** What the server's DATABASE_URL points at. */
  serverUrl: string;
  /** The test's own handle on the same database, for setup and the final checks. */
  db: Db;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Runs the load through one outage and asserts what SPEC §9 promises. */
async function soakThrough(outage: Outage): Promise<void> {
  const { db } = outage;
  let server: ServerProcess | null = null;
  try {
    const { user, apiKey, opsToken } = await prepare(db);
    server = await spawnServer({ DATABASE_URL: outage.serverUrl, LOG_LEVEL: "warn" });
    const alive = liveness(server);
    const { accessToken } = await login(server.base, user);

    const t0 = performance.now();
    let stopped = false;
    const clients = loadClients(
      { base: server.base, apiKey, opsToken, user, accessToken },
      t0,
      () => stopped,
    );
    await sleep(BEFORE_MS);
    const cutAt = performance.now() - t0;
    await outage.down();
    await sleep(OUTAGE_MS);
    const restoreAt = performance.now() - t0;
    await outage.up();
    await sleep(AFTER_MS);
    stopped = true;
    await clients.done;

    const { samples, acked } = clients;
    const s = summarise(samples, cutAt, restoreAt);
    const { during, ...figures } = s;
    console.log(`soak figures: ${JSON.stringify(figures)}`);

    assert.ok(alive.alive(), `the process stayed up:\n${server.output().slice(-4000)}`);
    assert.deepEqual(crashLines(server), [], "no unhandled rejection or crash in the output");
    const resets = samples.filter((x) => x.networkError);
    assert.deepEqual(resets, [], `no connection was reset:\n${server.output().slice(-3000)}`);
    assert.ok(during.length > 0, "requests were made during the outage");
    for (const x of during) {
      assert.equal(x.status, 503, `${x.kind} during the outage: ${x.status}`);
      assert.ok(x.problemType?.endsWith("/database-unavailable"), `problem type ${x.problemType}`);
    }
    assert.ok(s.maxOutageLatencyMs < 2000, `${s.maxOutageLatencyMs} ms during the outage`);
    assert.ok(s.recoveryMs < 5000, `recovered after ${s.recoveryMs} ms`);
    const late = samples.filter((x) => x.start >= restoreAt + 5000 && x.status >= 300);
    assert.deepEqual(late, [], "normal service 5 s after the restore");
    assert.ok(acked.jobs.length > 0 && acked.apiKeys.size > 0 && acked.sessions.length > 0);

    await settle(acked);
    await assertNothingLost(db, acked);
    console.log(
      `soak rows checked: ${acked.sessions.length} sessions, ${acked.apiKeys.size} API keys, ` +
        `${acked.jobs.length} jobs, ${acked.unsettled.length} idempotent retries`,
    );
  } finally {
    await server?.stop();
    await outage.close();
  }
}

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: `database cut (TCP) for ${SOAK_SECONDS} s under load: 503 fast, recovers, loses nothing`,
}, async () => {
  const { url, db } = await scratchDatabase();
  const target = new URL(url);
  const proxy = startCutProxy({ hostname: target.hostname, port: Number(target.port) });
  const viaProxy = new URL(url);
  viaProxy.port = String(proxy.port);
  await soakThrough({
    serverUrl: viaProxy.toString(),
    db,
    down: () => Promise.resolve(proxy.down()),
    up: () => Promise.resolve(proxy.up()),
    async close() {
      proxy.close();
      await db.close();
    },
  });
});

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES || !canRunOwnCluster(),
  name:
    `PostgreSQL stopped (pg_ctl) for ${SOAK_SECONDS} s under load: 503 fast, recovers, loses nothing`,
}, async () => {
  const cluster = await startOwnCluster();
  // The test's own pool loses its connections too; its reconnect failures are expected.
  const unabsorb = absorbBackgroundDisconnects(() => {});
  const db = openPostgres(cluster.url, { max: 4 });
  await migrate(db, await loadMigrations());
  await soakThrough({
    serverUrl: cluster.url,
    db,
    down: () => cluster.stop(),
    up: () => cluster.start(),
    async close() {
      await db.close();
      await cluster.destroy();
      setTimeout(unabsorb, 10_000);
    },
  });
});
