/** Helpers for queue and pipeline tests: a fast worker, a silent logger, waiting for a job. */
import type { Db } from "../../db/client.ts";
import { findJobById, insertJob, type Job, type JobState } from "../../db/jobs.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { createWorker, type Worker, type WorkerOptions } from "../../worker/worker.ts";

/** The fixture days for ingest jobs. */
export const FIXTURE_DIR = new URL("../fixtures/ingest", import.meta.url).pathname;

/** A logger that keeps its lines in `lines`. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger("debug", (l) => lines.push(l)), { lines });
}

/** Timings small enough for tests. */
export const FAST: WorkerOptions = {
  pollMs: 20,
  heartbeatMs: 50,
  staleMs: 400,
  backoff: { baseMs: 40, maxMs: 200 },
  maxOutageBackoffMs: 200,
};

/** A started worker over `db` with fast timings and INGEST_DIR at the fixtures. */
export function startTestWorker(
  db: Db,
  opts: WorkerOptions = {},
  log: Logger = memoryLogger(),
): Worker {
  const config = loadConfig({ INGEST_DIR: FIXTURE_DIR });
  const worker = createWorker({ db, log, config }, { ...FAST, ...opts });
  worker.start();
  return worker;
}

/** Queues a job straight into the database. */
export async function queueJob(
  db: Db,
  type: string,
  params: Record<string, unknown>,
  maxAttempts?: number,
): Promise<Job> {
  return await insertJob(db, {
    id: crypto.randomUUID(),
    type,
    params,
    createdBy: "ops:test",
    maxAttempts,
  });
}

const TERMINAL: JobState[] = ["succeeded", "failed", "cancelled"];

/** Polls until the job is in one of `states` (default: any final state); fails after `ms`. */
export async function waitForJob(
  db: Db,
  id: string,
  states: JobState[] = TERMINAL,
  ms = 10_000,
): Promise<Job> {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await findJobById(db, id);
    if (job && states.includes(job.state)) return job;
    if (Date.now() > deadline) {
      throw new Error(`job ${id} not ${states.join("|")} after ${ms} ms: ${JSON.stringify(job)}`);
    }
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** A deferred promise, to hold a handler's step open until the test lets it go. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}
