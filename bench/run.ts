/**
 * `deno task bench`: a bare Deno.serve baseline and proplab's real routes, measured with wrk
 * on loopback in the same run (50 connections, median of 3 runs), printed as req/s, p50/p99
 * and the ratio to the baseline, then the six targets met or missed, then where the
 * time goes: a CPU profile of scenario 1 (one more wrk run against a `--cpu-prof` proplab).
 *
 * PostgreSQL: DATABASE_URL, or (unset) a throwaway cluster from scripts/pg-throwaway.sh
 * (needs root), stopped at the end. BENCH_SECONDS sets each wrk run's length (default 5).
 * BENCH_ONLY=bare,1,3 runs only those scenarios (ids: bare 1 1b 2 6 3 4); BENCH_PROFILE=0
 * skips the profile.
 */
import {
  medianWrk,
  type PairedResult,
  pairedWrk,
  ROUND_WARMUP_SECONDS,
  runWrk,
  type WrkOptions,
  type WrkResult,
} from "./wrk.ts";
import {
  CEILING_1,
  CEILING_3,
  type Extra,
  formatCeilings,
  formatTable,
  formatTargets,
  isPaired,
  type Row,
  scenarioId,
} from "./report.ts";
import { formatProfileSummary, summarizeProfile } from "./profile.ts";
import { rotatingKeysScript, seed, type Seeded } from "./seed.ts";
import { freePort } from "../tests/support/process.ts";
import { type Db, openPglite, openPostgres } from "../db/client.ts";
import { upsertSetting } from "../db/settings.ts";
import { migrateDatabase } from "../server.ts";
import { createLogger } from "../lib/log.ts";
import { defaultHashingLimits } from "../lib/password.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const USERS = 1000;
const TODAY = "/api/v1/data/picks/today";
const SCENARIOS = ["bare", "1", "1b", "2", "6", "3", "4"];
const PG_SCENARIOS = ["1", "1b", "2", "6", "3"];
const ONLY = Deno.env.get("BENCH_ONLY")?.split(",").map((s) => s.trim()).filter(Boolean);
const PROFILE = Deno.env.get("BENCH_PROFILE") !== "0";

const selected = (id: string) => !ONLY || ONLY.includes(id);

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
  readyStatus = 200,
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
      if (res.status === readyStatus) {
        return { base, child, coldMs: performance.now() - started, stop };
      }
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 2));
  }
  await stop();
  throw new Error(`${base}${probe} did not answer ${readyStatus}`);
}

/**
 * The `--v8-flags` of deno.json's task `name`: each backend is measured with the flags its
 * README command runs it with (`start` embedded, `start:pg` on PostgreSQL).
 */
const TASKS = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url))).tasks;
function v8FlagsOf(name: "start" | "start:pg"): string[] {
  return String(TASKS[name]).split(/\s+/).filter((arg) => arg.startsWith("--v8-flags="));
}

const flagsText = (name: "start" | "start:pg") => v8FlagsOf(name).join(" ") || "none";

const proplab = (
  env: Record<string, string>,
  key: string,
  flags = v8FlagsOf(env.DATABASE_URL ? "start:pg" : "start"),
) => spawn(["run", "-A", ...flags, "main.ts", "serve"], env, TODAY, { "x-api-key": key });

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN) / 1024;
}

/**
 * Measures `url`: paired with rounds of the bare baseline at `bareUrl` (its ratio comes from
 * them), or alone when `bareUrl` is null (the ratio is then to the bare row of the table).
 */
async function measureAgainst(
  url: string,
  opts: WrkOptions,
  bareUrl: string | null,
): Promise<WrkResult | PairedResult> {
  const o = { seconds: SECONDS, ...opts };
  const r = bareUrl ? await pairedWrk(url, bareUrl, o) : await medianWrk(url, o);
  const paired = isPaired(r) ? `, bare alongside ${Math.round(r.bareRps)} req/s` : "";
  console.error(
    `  measured ${Math.round(r.rps)} req/s, p99 ${r.p99Ms} ms, non-2xx ${r.non2xx}${paired}`,
  );
  return r;
}

/**
 * Measures scenario `name` with `run` and adds it to `rows`, unless BENCH_ONLY leaves it out
 * (a ceiling row, "c1", runs with its scenario, "1").
 */
async function measure(rows: Row[], name: string, run: () => Promise<WrkResult>) {
  if (selected(scenarioId(name).replace(/^c(?=\d)/, ""))) rows.push({ name, result: await run() });
}

/** An answer written to a temp file for bench/bare.ts, and its status. */
interface Captured {
  file: string;
  status: number;
}

/** Writes the answer `url` gives now to a temp file for bench/bare.ts (Date and length aside). */
async function captureAnswer(url: string, headers: Record<string, string>): Promise<Captured> {
  const res = await fetch(url, { headers });
  const body = await res.text();
  const kept = [...res.headers].filter(([k]) => k !== "date" && k !== "content-length");
  const file = await Deno.makeTempFile({ prefix: "proplab-answer-", suffix: ".json" });
  await Deno.writeTextFile(file, JSON.stringify({ status: res.status, headers: kept, body }));
  return { file, status: res.status };
}

/**
 * The ceiling of a scenario: a bare Deno.serve giving the captured answer, paired with bare
 * rounds like the scenario. Deletes the answer's file.
 */
async function replayed({ file, status }: Captured, bareUrl: string): Promise<WrkResult> {
  const replay = await spawn(["run", "-A", "bench/bare.ts", "$PORT", file], {}, "/", {}, status);
  try {
    return await measureAgainst(replay.base + "/", {}, bareUrl);
  } finally {
    await replay.stop();
    await Deno.remove(file);
  }
}

/** 20 logins per second (scrypt on the server) for as long as `during` runs. */
async function withLogins<T>(base: string, email: string, password: string, during: Promise<T>) {
  let done = 0;
  let failed = 0;
  let busy = 0;
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
    else if (res.status === 503) busy++;
    else failed++;
  };
  const timer = setInterval(() => {
    if (!running) return;
    const p = login().catch(() => void failed++).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 50);
  try {
    return { result: await during, logins: () => ({ done, busy, failed }) };
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

async function postgresScenarios(
  url: string,
  s: Seeded,
  db: Db,
  rows: Row[],
  x: Extra,
  bareUrl: string,
) {
  const wrk = (target: string, opts: WrkOptions) => measureAgainst(target, opts, bareUrl);
  const p = await proplab({ DATABASE_URL: url }, s.hotKey);
  x.coldPgMs = p.coldMs;
  const today = p.base + TODAY;
  const hotKey = { headers: { "X-API-Key": s.hotKey } };
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  let refusal: Captured | null = null;
  try {
    await Deno.writeTextFile(script, rotatingKeysScript(s.keys));
    await measure(rows, "1. API key, 1 hot user", () => wrk(today, hotKey));
    await measure(
      rows,
      CEILING_1,
      async () => replayed(await captureAnswer(today, hotKey.headers), bareUrl),
    );
    await measure(rows, "1b. API key, 1,000 users", () => wrk(today, { script }));
    await measure(rows, "2. access token (JWT), 1 hot user", async () => {
      const token = await accessToken(p.base, s.hot.email, s.hot.password);
      return await wrk(today, { headers: { Authorization: `Bearer ${token}` } });
    });
    await measure(rows, "6. API key, 1,000 users + 20 logins/s", async () => {
      // Not paired: the logins would load the machine during the bare rounds too.
      const alone = measureAgainst(today, { script }, null);
      const mixed = await withLogins(p.base, s.hot.email, s.hot.password, alone);
      x.logins = { ...mixed.logins(), hashers: defaultHashingLimits().concurrency };
      return mixed.result;
    });
    await measure(rows, "3. 429-heavy (1 user, 10/min)", async () => {
      await upsertSetting(db, "ratelimit.sharp.perMinute", 10, "bench");
      await until429(today, s.hotKey);
      refusal = await captureAnswer(today, hotKey.headers);
      const result = await wrk(today, hotKey);
      await upsertSetting(db, "ratelimit.sharp.perMinute", 1_000_000_000, "bench");
      return result;
    });
    const captured = refusal;
    if (captured) await measure(rows, CEILING_3, () => replayed(captured, bareUrl));
  } finally {
    await Deno.remove(script);
    await p.stop();
  }
}

/**
 * One more wrk run of scenario 1 against a proplab started with `--cpu-prof`, which writes
 * its profile when it exits after SIGTERM. Not part of the table. Returns the report lines.
 */
async function profileScenario1(url: string, s: Seeded): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "proplab-prof-" });
  try {
    const flags = [...v8FlagsOf("start:pg"), "--cpu-prof", `--cpu-prof-dir=${dir}`];
    const p = await proplab({ DATABASE_URL: url }, s.hotKey, flags);
    try {
      const r = await runWrk(p.base + TODAY, {
        seconds: SECONDS,
        headers: { "X-API-Key": s.hotKey },
      });
      console.error(`  profiled ${Math.round(r.rps)} req/s, non-2xx ${r.non2xx}`);
    } finally {
      await p.stop();
    }
    const status = await p.child.status;
    const file = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".cpuprofile"));
    if (!file) {
      const exit = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
      return [`Where the time goes: no CPU profile was written (proplab exited with ${exit})`];
    }
    const profile = JSON.parse(await Deno.readTextFile(`${dir}/${file.name}`));
    const summary = summarizeProfile(profile, { root: new URL("../", import.meta.url).href });
    return [
      `Where the time goes (CPU profile of scenario 1, ${summary.sampledMs.toFixed(0)} ms sampled)`,
      ...formatProfileSummary(summary),
    ];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function pgliteScenario(x: Extra, bareUrl: string): Promise<WrkResult> {
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-bench-" });
  const db = await openPglite(dataDir);
  await migrateDatabase(db, createLogger("error"));
  const s = await seed(db, 0);
  await db.close();
  const p = await proplab({ DATA_DIR: dataDir, DATABASE_URL: "" }, s.hotKey);
  x.coldPgliteMs = p.coldMs;
  try {
    const result = await measureAgainst(
      p.base + TODAY,
      { headers: { "X-API-Key": s.hotKey } },
      bareUrl,
    );
    x.pgliteRssMb = rssMb(p.child.pid);
    return result;
  } finally {
    await p.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

if (import.meta.main) {
  await requireWrk();
  const unknown = ONLY?.filter((id) => !SCENARIOS.includes(id)) ?? [];
  if (unknown.length) {
    console.error(
      `BENCH_ONLY: unknown scenario ${unknown.join(",")} (ids: ${SCENARIOS.join(",")})`,
    );
    Deno.exit(2);
  }
  const pg = await benchPostgres();
  const db = openPostgres(pg.url, { max: 2 });
  try {
    await migrateDatabase(db, createLogger("error"));
    const facts = await pgFacts(db);
    console.error(`seeding ${USERS} users with API keys…`);
    const seeded = await seed(db, USERS);
    const rows: Row[] = [];
    const x: Extra = { coldPgMs: NaN, coldPgliteMs: NaN, pgliteRssMb: NaN, logins: {} as never };
    // The bare server runs all along: each scenario's rounds alternate with rounds of it.
    const bare = await spawn(["run", "-A", "bench/bare.ts", "$PORT"], {}, "/");
    const bareUrl = bare.base + "/";
    let profile: string[] = [];
    try {
      await measure(rows, "bare Deno.serve, small JSON", () => measureAgainst(bareUrl, {}, null));
      if (PG_SCENARIOS.some(selected)) {
        await postgresScenarios(pg.url, seeded, db, rows, x, bareUrl);
      }
      profile = PROFILE ? await profileScenario1(pg.url, seeded) : [];
      await measure(
        rows,
        "4. PGlite embedded, API key, 1 hot user",
        () => pgliteScenario(x, bareUrl),
      );
    } finally {
      await bare.stop();
    }
    console.log(
      `\nwrk -t2 -c50 -d${SECONDS}s; each scenario: 3 rounds of ${ROUND_WARMUP_SECONDS} s ` +
        `uncounted, then scenario and bare back to back, the round with the median ratio ` +
        `shown (6: median of 3, no pairing); ` +
        `${navigator.hardwareConcurrency} cores; ` +
        `Deno ${Deno.version.deno}; PostgreSQL: ${facts}\n` +
        `V8 flags: embedded ${flagsText("start")} (deno task start), ` +
        `PostgreSQL ${flagsText("start:pg")} (deno task start:pg)\n`,
    );
    console.log(formatTable(rows).join("\n"));
    console.log();
    console.log(formatTargets(rows, x).join("\n"));
    const ceilings = formatCeilings(rows);
    if (ceilings.length) console.log(["", ...ceilings].join("\n"));
    if (profile.length) console.log();
    for (const line of profile) console.log(line);
  } finally {
    await db.close();
    await pg.stop();
  }
}
