/**
 * A worker as its own OS process, for the multi-process queue tests. Environment:
 * DATABASE_URL, HEARTBEAT_MS, STALE_MS, STEP_MS (each settle job sleeps this long in a step).
 * Prints `ready <workerId>` once running, and one `ran <jobId>` line per job it ran.
 * SIGTERM stops it gracefully.
 */
import { openPostgres } from "../../db/client.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { createWorker } from "../../worker/worker.ts";
import type { JobContext } from "../../worker/job.ts";

const env = Deno.env.toObject();
const db = openPostgres(env.DATABASE_URL, { max: 4 });
const stepMs = Number(env.STEP_MS ?? 0);
const log = createLogger("warn", (l) => console.error(l));

async function slowSettle(ctx: JobContext): Promise<unknown> {
  await ctx.step("sleep", async () => {
    await new Promise((r) => setTimeout(r, stepMs));
    return { rows: 0, value: null };
  });
  console.log(`ran ${ctx.job.id}`);
  return { by: Deno.pid };
}

const worker = createWorker({ db, log, config: loadConfig({}) }, {
  workerId: `worker:pid-${Deno.pid}`,
  pollMs: 20,
  heartbeatMs: Number(env.HEARTBEAT_MS ?? 50),
  staleMs: Number(env.STALE_MS ?? 400),
  handlers: { settle: slowSettle },
});
await db.ping();
worker.start();
console.log(`ready ${worker.id}`);
await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", () => resolve()));
await worker.stop();
await db.close();
Deno.exit(0);
