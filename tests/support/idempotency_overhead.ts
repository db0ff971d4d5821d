/**
 * Measures what the Idempotency-Key check costs per request: the same creating route, in
 * the same run and interleaved, without the header, with a fresh key (claim + transaction +
 * sealed store) and with a used key (replay). PGlite in memory, or PostgreSQL with DATABASE_URL.
 *
 *   deno run -A tests/support/idempotency_overhead.ts [rounds]
 */
import { openTestDb } from "./db.ts";
import { startTestServer } from "./server.ts";
import { createThingsTable, testAuthenticate, thingRoutes } from "./idempotency_fixtures.ts";

const rounds = Number(Deno.args[0] ?? 500);
const tdb = await openTestDb();
await createThingsTable(tdb.db);
const server = await startTestServer(tdb.db, { LOG_LEVEL: "error" }, undefined, thingRoutes());
server.running.deps.authenticate = (req) => testAuthenticate(req);

async function timed(key: string | null): Promise<number> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-test-principal": "user:bench",
  };
  if (key !== null) headers["idempotency-key"] = key;
  const t0 = performance.now();
  const res = await fetch(server.url("/test/things"), {
    method: "POST",
    headers,
    body: '{"name":"bench"}',
  });
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 201) throw new Error(`unexpected ${res.status}`);
  return ms;
}

const samples = { none: [] as number[], fresh: [] as number[], replay: [] as number[] };
for (let i = -50; i < rounds; i++) {
  const none = await timed(null);
  const fresh = await timed(`bench-${i}`);
  const replay = await timed(`bench-${i}`);
  if (i < 0) continue; // warm-up
  samples.none.push(none);
  samples.fresh.push(fresh);
  samples.replay.push(replay);
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { mean: +mean.toFixed(3), p50: +at(0.5).toFixed(3), p95: +at(0.95).toFixed(3) };
}

const none = stats(samples.none);
console.log(`database: ${tdb.db.kind}, ${rounds} interleaved rounds, ms per request`);
for (const [name, xs] of Object.entries(samples)) {
  const s = stats(xs);
  const over = (s.p50 - none.p50).toFixed(3);
  console.log(
    `${name.padEnd(7)} mean ${s.mean}  p50 ${s.p50}  p95 ${s.p95}  (p50 vs none: +${over})`,
  );
}
await server.stop();
await tdb.db.close();
