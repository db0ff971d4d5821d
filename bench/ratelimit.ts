/**
 * The cost of the rate limiter per request, same run: requests/s of a bare Deno.serve, of
 * the app on a route without a limit, and of the app on a data-class route (two windows
 * charged per request). The server runs in a child process; this one drives the load.
 *
 *   deno run -A bench/ratelimit.ts [seconds=5] [concurrency=50]
 *   DATABASE_URL=postgres://… deno run -A bench/ratelimit.ts   (PostgreSQL instead of PGlite)
 */
import { loadConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { json } from "../lib/http.ts";
import { buildApp, migrateDatabase, openDatabase } from "../server.ts";
import type { Route } from "../routes/context.ts";

const ROUTES: Route[] = [
  { method: "GET", path: "/plain", auth: [], summary: "no limit", handler: () => json({ ok: 1 }) },
  {
    method: "GET",
    path: "/limited",
    auth: ["apiKey"],
    tier: "sharp",
    limit: "data",
    summary: "data class",
    handler: () => json({ ok: 1 }),
  },
];

async function serveChild(): Promise<void> {
  const config = loadConfig({ ...Deno.env.toObject(), LOG_LEVEL: "error" });
  const log = createLogger("error");
  const db = await openDatabase({ ...config, dataDir: await Deno.makeTempDir() }, log);
  await migrateDatabase(db, log);
  const running = await buildApp(config, db, log, Date.now, ROUTES);
  await db.exec(`insert into settings (key, value, updated_by) values
    ('ratelimit.sharp.perMinute', '1000000000', 'bench'),
    ('ratelimit.sharp.perDay', '1000000000', 'bench')
    on conflict (key) do update set value = excluded.value`);
  await running.deps.settings.refresh();
  let n = 0; // 50 users in turn: concurrent checks mostly lock different rows, as in real use
  running.deps.authenticate = () =>
    Promise.resolve({
      kind: "apiKey",
      subject: `user:bench-${n++ % 50}`,
      userId: "bench",
      tier: "sharp",
      scopes: [],
      credentialId: "bench",
    });
  Deno.serve({ port: 8701, hostname: "127.0.0.1", onListen: () => {} }, running.app.fetch);
  Deno.serve(
    { port: 8702, hostname: "127.0.0.1", onListen: () => console.log("ready") },
    () => new Response('{"ok":1}', { headers: { "content-type": "application/json" } }),
  );
}

async function load(url: string, seconds: number, concurrency: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return done / seconds;
}

const LIMITED = "http://127.0.0.1:8701/limited";

async function main(): Promise<void> {
  const seconds = Number(Deno.args[0] ?? 5);
  const concurrency = Number(Deno.args[1] ?? 50);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "serve"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (!(await reader.read()).value?.includes("ready")) { /* wait for the server */ }
  const db = Deno.env.get("DATABASE_URL") ? "postgresql" : "pglite";
  try {
    for (const url of ["http://127.0.0.1:8702/", "http://127.0.0.1:8701/plain", LIMITED]) {
      await load(url, 1, concurrency); // warm up
    }
    const bare = await load("http://127.0.0.1:8702/", seconds, concurrency);
    const plain = await load("http://127.0.0.1:8701/plain", seconds, concurrency);
    const limited = await load(LIMITED, seconds, concurrency);
    const pct = (x: number) => `${Math.round((x / bare) * 100)}% of bare`;
    console.log(`database ${db}, ${concurrency} concurrent loops, ${seconds} s each`);
    console.log(`bare Deno.serve      ${Math.round(bare)} req/s`);
    console.log(`app, no limit        ${Math.round(plain)} req/s (${pct(plain)})`);
    console.log(`app, data limiter    ${Math.round(limited)} req/s (${pct(limited)})`);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

if (Deno.args[0] === "serve") await serveChild();
else await main();
