/**
 * The job loop: claim (FOR UPDATE SKIP LOCKED) → run the handler's steps with a heartbeat →
 * finish, retry with backoff, or fail. Reclaims jobs whose worker died. Survives the database
 * going away: logs once, backs off, resumes.
 */
import { type Db, isUnavailable, type Queryable } from "../db/client.ts";
import {
  type ClaimedJob,
  claimNextJob,
  finishJob,
  heartbeatJob,
  JOBS_CHANNEL,
  type Lease,
  lockJobLease,
  reclaimStaleJobs,
  releaseJob,
  retryJob,
} from "../db/jobs.ts";
import { appendPipelineStep, finishPipelineRun, insertPipelineRun } from "../db/pipeline_runs.ts";
import type { Config } from "../lib/config.ts";
import type { JobType } from "../lib/commands.ts";
import { type Backoff, backoffMs, shouldRetry } from "../lib/jobs.ts";
import { errorFields, type Logger } from "../lib/log.ts";
import { type JobContext, JobError, type JobHandler } from "./job.ts";
import { ingest } from "./ingest.ts";
import { settle } from "./settle.ts";
import { scoreDayJob } from "./score_day.ts";

/** The pipeline handlers by job type. */
export const HANDLERS: Record<JobType, JobHandler> = {
  "ingest": ingest,
  "settle": settle,
  "score-day": scoreDayJob,
};

/** Timings of the loop; tests shrink them. */
export interface WorkerOptions {
  workerId?: string;
  /** Idle poll interval (NOTIFY on insert usually wakes the worker sooner). */
  pollMs?: number;
  heartbeatMs?: number;
  /** A running job whose heartbeat is older than this is reclaimed. */
  staleMs?: number;
  /** Delay before retrying a failed attempt. */
  backoff?: Backoff;
  /** Longest wait between tries while the database is unreachable. */
  maxOutageBackoffMs?: number;
  handlers?: Partial<Record<JobType, JobHandler>>;
}

/** What the worker is doing, for health reports. */
export interface WorkerStatus {
  workerId: string;
  state: "idle" | "running" | "backing-off" | "stopping" | "stopped";
  jobId: string | null;
  succeeded: number;
  failed: number;
}

/** A worker loop bound to one database. */
export interface Worker {
  readonly id: string;
  start(): void;
  /** Stops after the running step (its job goes back to the queue); waits up to `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  status(): WorkerStatus;
}

class Cancelled extends Error {}

/** What the heartbeat learns about a running job. */
interface Flags {
  lost: boolean;
  cancel: boolean;
}
class Stopped extends Error {}
class LeaseLost extends Error {}

/** A sleep that `wake()` cuts short. */
function createWaker() {
  let wakeUp: (() => void) | null = null;
  return {
    sleep(ms: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeUp = null;
          resolve();
        }
        wakeUp = done;
      });
    },
    wake() {
      wakeUp?.();
    },
  };
}

/** Builds a worker; call `start()` to run it. */
export function createWorker(
  deps: { db: Db; log: Logger; config: Config },
  opts: WorkerOptions = {},
): Worker {
  const { db, log, config } = deps;
  const id = opts.workerId ?? `worker:${crypto.randomUUID()}`;
  const pollMs = opts.pollMs ?? 1000;
  const heartbeatMs = opts.heartbeatMs ?? 2000;
  const staleMs = opts.staleMs ?? 15_000;
  const backoff = opts.backoff ?? { baseMs: 2000, maxMs: 60_000 };
  const maxOutageMs = opts.maxOutageBackoffMs ?? 5000;
  const handlers = { ...HANDLERS, ...opts.handlers };
  const waker = createWaker();
  const status: WorkerStatus = {
    workerId: id,
    state: "idle",
    jobId: null,
    succeeded: 0,
    failed: 0,
  };
  let stopping = false;
  let loopDone: Promise<void> | null = null;
  let unlisten: (() => Promise<void>) | null = null;
  let dbDown = false;
  let nextReclaimAt = 0;

  async function subscribe() {
    if (unlisten || stopping) return;
    unlisten = await db.listen(JOBS_CHANNEL, () => waker.wake()).catch(() => null);
  }

  async function reclaim() {
    if (Date.now() < nextReclaimAt) return;
    nextReclaimAt = Date.now() + Math.max(pollMs, staleMs / 2);
    for (const r of await reclaimStaleJobs(db, staleMs)) {
      log.warn("job reclaimed after its worker's heartbeat lapsed", {
        jobId: r.id,
        state: r.state,
      });
    }
  }

  function contextFor(job: ClaimedJob, lease: Lease, runId: string, flags: Flags) {
    // A cancel request is read when each step is recorded (and by the heartbeat); a job that
    // is claimed is not cancelled yet (cancelling a queued job never lets it be claimed).
    let cancelRequested = false;
    const checkpoint = () => {
      if (flags.lost) throw new LeaseLost();
      if (cancelRequested || flags.cancel) throw new Cancelled();
      if (stopping) throw new Stopped();
    };
    const ctx: JobContext = {
      job,
      config,
      log,
      db,
      async step(name, fn) {
        checkpoint();
        const startedAt = new Date();
        const t0 = performance.now();
        const { rows, value } = await fn();
        cancelRequested = await appendPipelineStep(db, runId, {
          name,
          startedAt: startedAt.toISOString(),
          finishedAt: new Date().toISOString(),
          durationMs: Math.round((performance.now() - t0) * 100) / 100,
          rows,
        });
        return value;
      },
      transaction: (fn) =>
        db.transaction(async (tx) => {
          if (!(await lockJobLease(tx, lease))) throw new LeaseLost();
          return await fn(tx);
        }),
    };
    return ctx;
  }

  /**
   * Ends an attempt: the job's write and its run's close in one transaction, so readers never
   * see a finished job with an open run. Skipped when the lease was lost (the reclaimer closed
   * the run).
   */
  async function closeAttempt(
    runId: string,
    runState: "succeeded" | "failed" | "cancelled",
    runError: string | null,
    writeJob: (tx: Queryable) => Promise<boolean>,
  ): Promise<boolean> {
    return await db.transaction(async (tx) => {
      if (!(await writeJob(tx))) return false;
      await finishPipelineRun(tx, runId, runState, runError);
      return true;
    });
  }

  async function settleFailure(job: ClaimedJob, lease: Lease, runId: string, err: unknown) {
    const fields = { jobId: job.id, type: job.type, attempt: job.attempts };
    if (err instanceof LeaseLost) {
      log.warn("job lease lost (reclaimed elsewhere); dropping this attempt", fields);
    } else if (err instanceof Cancelled) {
      await closeAttempt(
        runId,
        "cancelled",
        "cancelled by request",
        (tx) => finishJob(tx, lease, { state: "cancelled", error: "cancelled by request" }),
      );
      log.info("job cancelled", fields);
    } else if (err instanceof Stopped) {
      await closeAttempt(
        runId,
        "cancelled",
        "worker stopped; job requeued",
        (tx) => releaseJob(tx, lease),
      );
      log.info("job requeued: worker stopping", fields);
    } else {
      const known = err instanceof JobError;
      const message = known
        ? err.message
        : `internal error in the ${job.type} handler; see the worker log for job ${job.id}`;
      const retryable = !known || err.retryable;
      log.warn("job attempt failed", { ...fields, ...errorFields(err) });
      const retry = shouldRetry(job.attempts, job.maxAttempts, retryable);
      const delay = backoffMs(job.attempts, backoff, Math.random());
      await closeAttempt(
        runId,
        "failed",
        message,
        (tx) =>
          retry
            ? retryJob(tx, lease, message, delay)
            : finishJob(tx, lease, { state: "failed", error: message }),
      );
      if (!retry) status.failed++;
    }
  }

  async function runJob(job: ClaimedJob) {
    const lease: Lease = { jobId: job.id, workerId: id, attempt: job.attempts };
    const runId = crypto.randomUUID();
    const flags: Flags = { lost: false, cancel: false };
    status.state = "running";
    status.jobId = job.id;
    const started = performance.now();
    const beat = setInterval(() => {
      heartbeatJob(db, lease).then((cancel) => {
        if (cancel === null) flags.lost = true;
        else flags.cancel ||= cancel;
      }).catch(() => {/* the next beat or the lease fence will tell */});
    }, heartbeatMs);
    try {
      await insertPipelineRun(db, {
        id: runId,
        jobId: job.id,
        type: job.type,
        attempt: job.attempts,
      });
      let result: unknown;
      try {
        result = await handlers[job.type as JobType](contextFor(job, lease, runId, flags));
      } catch (err) {
        if (isUnavailable(err)) throw err;
        await settleFailure(job, lease, runId, err);
        return;
      }
      const done = await closeAttempt(
        runId,
        "succeeded",
        null,
        (tx) => finishJob(tx, lease, { state: "succeeded", result: result ?? null }),
      );
      if (done) {
        status.succeeded++;
        log.info("job succeeded", {
          jobId: job.id,
          type: job.type,
          attempt: job.attempts,
          durationMs: Math.round(performance.now() - started),
        });
      } else {
        log.warn("job lease lost before the job could be marked finished", { jobId: job.id });
      }
    } finally {
      clearInterval(beat);
      status.jobId = null;
    }
  }

  async function loop() {
    let outageMs = 0;
    while (!stopping) {
      try {
        await subscribe();
        await reclaim();
        const job = await claimNextJob(db, id);
        if (dbDown) log.info("worker: database reachable again", { workerId: id });
        dbDown = false;
        outageMs = 0;
        if (job) {
          await runJob(job);
          continue;
        }
        status.state = "idle";
        await waker.sleep(pollMs);
      } catch (err) {
        if (!isUnavailable(err)) log.error("worker loop error", errorFields(err));
        else if (!dbDown) log.warn("worker: database unavailable; backing off", errorFields(err));
        dbDown = dbDown || isUnavailable(err);
        outageMs = Math.min(maxOutageMs, outageMs ? outageMs * 2 : pollMs);
        status.state = "backing-off";
        await waker.sleep(outageMs);
      }
    }
  }

  return {
    id,
    start() {
      if (loopDone) return;
      log.info("worker started", { workerId: id });
      loopDone = loop().catch((err) => log.error("worker loop crashed", errorFields(err)));
    },
    async stop(graceMs = 10_000) {
      stopping = true;
      status.state = "stopping";
      waker.wake();
      if (loopDone) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<void>((r) => timer = setTimeout(r, graceMs));
        await Promise.race([loopDone, late]);
        clearTimeout(timer);
      }
      await unlisten?.().catch(() => {});
      status.state = "stopped";
      log.info("worker stopped", { workerId: id });
    },
    status: () => ({ ...status }),
  };
}
