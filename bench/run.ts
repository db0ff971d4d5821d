/**
 * `deno task bench`: a bare Deno.serve baseline and proplab's real routes, measured with wrk
 * on loopback in the same run (50 connections, median of 3 runs), printed as req/s, p50/p99
 * and the ratio to the baseline, then the six targets met or missed.
 *
 * PostgreSQL: DATABASE_URL, or (unset) a throwaway cluster from scripts/pg-throwaway.sh
 * (needs root), stopped at the end. BENCH_SECONDS sets each wrk run's length (default 5).
 */
import { medianWrk, type WrkOptions, type WrkResult } from "./wrk.ts";
import { rotatingKeysScript, seed, type Seeded } from "./seed.ts";
import { freePort } from "../tests/support/process.ts";
import { type Db, openPglite, openPostgres } from "../db/client.ts";
import { upsertSetting } from "../db/settings.ts";
import { migrateDatabase } from "../server.ts";
import { createLogger } from "../lib/log.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const USERS = 1000;
const TODAY = "/api/v1/data/picks/today";

interface Row {
  name: string;
  result: WrkResult;
}

/** A proplab (or bare) server process under load. */
interface Proc {
  base: string;
  child: Deno.ChildProcess;
  /** Milliseconds from spawn to the first answered `probe` request. */
  coldMs: number;
  stop(): Promise<void>;
}

async function requireWrk(): Promise<void> {
  try {
    await new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" }).output();
  } catch {
    console.error("wrk is not installed. Install it with:  apt-get install -y wrk");
    console.error("(macOS: brew install wrk)");
    Deno.exit(1);
  }
}

/** DATABASE_URL, or a throwaway cluster started here (stopped by the returned function). */
async function benchPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  const given = Deno.env.get("DATABASE_URL");
  if (given) return { url: given, stop: () => Promise.resolve() };
  const script = new URL("../scripts/pg-throwaway.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", { args: [script], stdout: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const dir = text.match(/PGDIR=(\S+)/)?.[1];
  const url = text.match(/DATABASE_URL=(\S+)/)?.[1];
  if (!out.success || !dir || !url) {
    throw new Error("could not start a throwaway PostgreSQL (run as root, or set DATABASE_URL)");
  }
  const stop = async () => {
    await new Deno.Command("bash", { args: [script, "stop", dir] }).output();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return { url, stop };
}

async function spawn(
  args: string[],
  env: Record<string, string>,
  probe: string,
  headers: Record<string, string> = {},
): Promise<Proc> {
  const port = freePort();
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: args.map((a) => a === "$PORT" ? String(port) : a),
    env: { ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "error", WORKER: "off" },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
  };
  for (let i = 0; performance.now() - started < 60_000; i++) {
    try {
      const res = await fetch(base + probe, { headers });
      await res.body?.cancel();
      if (res.ok) return { base, child, coldMs: performance.now() - started, stop };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 2));
  }
  await stop();
  throw new Error(`${base}${probe} did not answer 200`);
}

const proplab = (env: Record<string, string>, key: string) =>
  spawn(["run", "-A", "main.ts", "serve"], env, TODAY, { "x-api-key": key });

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN) / 1024;
}

async function wrk(url: string, opts: WrkOptions): Promise<WrkResult> {
  const r = await medianWrk(url, { seconds: SECONDS, ...opts });
  console.error(`  measured ${Math.round(r.rps)} req/s, p99 ${r.p99Ms} ms, non-2xx ${r.non2xx}`);
  return r;
}

/** 20 logins per second (scrypt on the server) for as long as `during` runs. */
async function withLogins<T>(base: string, email: string, password: string, during: Promise<T>) {
  let done = 0;
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  let running = true;
  const login = async () => {
    const res = await fetch(base + "/api/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    await res.body?.cancel();
    if (res.ok) done++;
    else failed++;
  };
  const timer = setInterval(() => {
    if (!running) return;
    const p = login().catch(() => void failed++).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 50);
  try {
    return { result: await during, logins: () => ({ done, failed }) };
  } finally {
    running = false;
    clearInterval(timer);
    await Promise.all(inFlight);
  }
}

async function accessToken(base: string, email: string, password: string): Promise<string> {
  const res = await fetch(base + "/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!res.ok) throw new Error(`login answered ${res.status}`);
  return (await res.json()).accessToken;
}

async function until429(url: string, key: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const res = await fetch(url, { headers: { "x-api-key": key } });
    await res.body?.cancel();
    if (res.status === 429) return;
  }
  throw new Error("the lowered limit never refused a request");
}

async function pgFacts(db: Db): Promise<string> {
  const rows = await db.query<{ name: string; setting: string }>(
    `select name, setting from pg_settings
      where name in ('fsync', 'synchronous_commit', 'server_version', 'max_connections')
      order by name`,
  );
  return rows.map((r) => `${r.name}=${r.setting}`).join(", ");
}

interface Extra {
  coldPgMs: number;
  coldPgliteMs: number;
  pgliteRssMb: number;
  logins: { done: number; failed: number };
}

function printTable(rows: Row[]) {
  const base = rows[0].result.rps;
  console.log("| scenario | req/s | p50 ms | p99 ms | non-2xx | vs bare |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const { name, result: r } of rows) {
    const pct = ((r.rps / base) * 100).toFixed(0);
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50Ms.toFixed(2)} | ${
        r.p99Ms.toFixed(2)
      } | ${r.non2xx} | ${pct}% |`,
    );
  }
}

function printTargets(rows: Row[], x: Extra) {
  const get = (prefix: string) => rows.find((r) => r.name.startsWith(prefix))!.result;
  const pct = (r: WrkResult) => (r.rps / rows[0].result.rps) * 100;
  const mark = (ok: boolean) => ok ? "met" : "MISSED";
  const hot = get("1."), many = get("1b."), jwt = get("2."), refuse = get("3.");
  const lite = get("4."), mixed = get("6.");
  const lines = [
    `1. API key >= 30% of bare, p99 <= 10 ms: hot ${pct(hot).toFixed(0)}% p99 ${
      hot.p99Ms.toFixed(1)
    } ms; 1,000 users ${pct(many).toFixed(0)}% p99 ${many.p99Ms.toFixed(1)} ms → ${
      mark(pct(hot) >= 30 && pct(many) >= 30 && hot.p99Ms <= 10 && many.p99Ms <= 10)
    }`,
    `2. access token >= 30%: ${pct(jwt).toFixed(0)}% → ${mark(pct(jwt) >= 30)}`,
    `3. 429-heavy >= 40%: ${pct(refuse).toFixed(0)}% → ${mark(pct(refuse) >= 40)}`,
    `4. PGlite >= 10%, RSS <= 300 MB: ${pct(lite).toFixed(0)}%, RSS ${
      x.pgliteRssMb.toFixed(0)
    } MB → ${mark(pct(lite) >= 10 && x.pgliteRssMb <= 300)}`,
    `5. cold start <= 300 ms on PostgreSQL: ${x.coldPgMs.toFixed(0)} ms → ${
      mark(x.coldPgMs <= 300)
    } (embedded PGlite: ${x.coldPgliteMs.toFixed(0)} ms)`,
    `6. data p99 <= 20 ms under 20 logins/s: ${
      mixed.p99Ms.toFixed(1)
    } ms (${x.logins.done} logins ok, ${x.logins.failed} failed) → ${mark(mixed.p99Ms <= 20)}`,
  ];
  for (const l of lines) console.log(l);
}

async function postgresScenarios(url: string, s: Seeded, db: Db, rows: Row[], x: Extra) {
  const env = { DATABASE_URL: url };
  const p = await proplab(env, s.hotKey);
  x.coldPgMs = p.coldMs;
  try {
    const today = p.base + TODAY;
    const script = await Deno.makeTempFile({ suffix: ".lua" });
    await Deno.writeTextFile(script, rotatingKeysScript(s.keys));
    rows.push({
      name: "1. API key, 1 hot user",
      result: await wrk(today, { headers: { "X-API-Key": s.hotKey } }),
    });
    rows.push({ name: "1b. API key, 1,000 users", result: await wrk(today, { script }) });
    const token = await accessToken(p.base, s.hot.email, s.hot.password);
    rows.push({
      name: "2. access token (JWT), 1 hot user",
      result: await wrk(today, { headers: { Authorization: `Bearer ${token}` } }),
    });
    const mixed = await withLogins(
      p.base,
      s.hot.email,
      s.hot.password,
      wrk(today, { script }),
    );
    x.logins = mixed.logins();
    rows.push({ name: "6. API key, 1,000 users + 20 logins/s", result: mixed.result });
    await upsertSetting(db, "ratelimit.sharp.perMinute", 10, "bench");
    await until429(today, s.hotKey);
    rows.push({
      name: "3. 429-heavy (1 user, 10/min)",
      result: await wrk(today, { headers: { "X-API-Key": s.hotKey } }),
    });
    await upsertSetting(db, "ratelimit.sharp.perMinute", 1_000_000_000, "bench");
    await Deno.remove(script);
  } finally {
    await p.stop();
  }
}

async function pgliteScenario(rows: Row[], x: Extra) {
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-bench-" });
  const db = await openPglite(dataDir);
  await migrateDatabase(db, createLogger("error"));
  const s = await seed(db, 0);
  await db.close();
  const p = await proplab({ DATA_DIR: dataDir, DATABASE_URL: "" }, s.hotKey);
  x.coldPgliteMs = p.coldMs;
  try {
    rows.push({
      name: "4. PGlite embedded, API key, 1 hot user",
      result: await wrk(p.base + TODAY, { headers: { "X-API-Key": s.hotKey } }),
    });
    x.pgliteRssMb = rssMb(p.child.pid);
  } finally {
    await p.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

if (import.meta.main) {
  await requireWrk();
  const pg = await benchPostgres();
  const db = openPostgres(pg.url, { max: 2 });
  try {
    await migrateDatabase(db, createLogger("error"));
    const facts = await pgFacts(db);
    console.error(`seeding ${USERS} users with API keys…`);
    const seeded = await seed(db, USERS);
    const rows: Row[] = [];
    const x: Extra = { coldPgMs: NaN, coldPgliteMs: NaN, pgliteRssMb: NaN, logins: {} as never };
    const bare = await spawn(["run", "-A", "bench/bare.ts", "$PORT"], {}, "/");
    try {
      rows.push({ name: "bare Deno.serve, small JSON", result: await wrk(bare.base + "/", {}) });
    } finally {
      await bare.stop();
    }
    await postgresScenarios(pg.url, seeded, db, rows, x);
    await pgliteScenario(rows, x);
    console.log(
      `\nwrk -t2 -c50 -d${SECONDS}s, median of 3; ${navigator.hardwareConcurrency} cores; ` +
        `Deno ${Deno.version.deno}; PostgreSQL: ${facts}\n`,
    );
    printTable(rows);
    console.log();
    printTargets(rows, x);
  } finally {
    await db.close();
    await pg.stop();
  }
}
