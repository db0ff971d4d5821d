/**
 * Child process of the cross-process rate-limit test: fires `count` concurrent checks of one
 * window at the PostgreSQL of DATABASE_URL, all at `startAt` (ms since epoch), and prints
 * how many were admitted as JSON on stdout.
 * Usage: deno run -A tests/support/ratelimit_worker.ts <key> <quota> <count> <startAt>
 */
import { openPostgres } from "../../db/client.ts";
import { chargeRateLimitWindows } from "../../db/ratelimits.ts";

const [key, quota, count, startAt] = Deno.args;
const db = openPostgres(Deno.env.get("DATABASE_URL")!, { max: 10 });
try {
  // Open the pool's connections first so the checks themselves start together.
  await Promise.all(Array.from({ length: 10 }, () => db.query("select 1")));
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
  const policy = { name: "x-minute", quota: Number(quota), windowSeconds: 60 };
  const results = await Promise.all(
    Array.from(
      { length: Number(count) },
      () => chargeRateLimitWindows(db, [{ key, policy }], Date.now()),
    ),
  );
  console.log(JSON.stringify({ admitted: results.filter((r) => r.admitted).length }));
} finally {
  await db.close();
}
