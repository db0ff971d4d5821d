/**
 * Queue throughput: enqueue N trivial `settle` jobs (a date each, none with picks: one
 * date's jobs run one at a time) and time W workers draining them. `deno run -A bench/queue_throughput.ts [N] [W]`; on PostgreSQL when
 * DATABASE_URL is set (a scratch database is created on that server), else in-memory PGlite.
 */
import { type Db, openPglite, openPostgres } from "../db/client.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";
import { loadConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { createWorker } from "../worker/worker.ts";

const n = Number(Deno.args[0] ?? 500);
const workers = Number(Deno.args[1] ?? 1);

async function openBenchDb(): Promise<Db> {
  const base = Deno.env.get("DATABASE_URL");
  if (!base) return await openPglite(null);
  const admin = openPostgres(base, { max: 1 });
  const name = `proplab_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await admin.exec(`create database ${name}`);
  await admin.close();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return openPostgres(url.toString(), { max: 10 });
}

const db = await openBenchDb();
await migrate(db, await loadMigrations());
await db.transaction(async (tx) => {
  await tx.query(
    `insert into jobs (id, type, params, created_by)
     select gen_random_uuid(), 'settle',
            jsonb_build_object('date', (date '2000-01-01' + g)::text), 'ops:bench'
       from generate_series(1, $1::int) g`,
    [n],
  );
});
const log = createLogger("warn");
const pool = Array.from(
  { length: workers },
  () => createWorker({ db, log, config: loadConfig({}) }, { pollMs: 50 }),
);
const t0 = performance.now();
pool.forEach((w) => w.start());
for (;;) {
  const [{ left }] = await db.query<{ left: number }>(
    "select count(*)::int as left from jobs where state in ('queued', 'running')",
  );
  if (left === 0) break;
  await new Promise((r) => setTimeout(r, 25));
}
const seconds = (performance.now() - t0) / 1000;
await Promise.all(pool.map((w) => w.stop()));
const [{ ok }] = await db.query<{ ok: number }>(
  "select count(*)::int as ok from jobs where state = 'succeeded' and attempts = 1",
);
console.log(JSON.stringify({
  database: db.kind,
  jobs: n,
  workers,
  succeededOnce: ok,
  seconds: Math.round(seconds * 100) / 100,
  jobsPerSecond: Math.round(n / seconds),
}));
await db.close();
