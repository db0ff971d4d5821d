/** The job queue: insert, claim (FOR UPDATE SKIP LOCKED), heartbeat, finish, retry, reclaim, cancel. */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";

/** Channel NOTIFYed with the job id on insert, so idle workers wake at once. */
export const JOBS_CHANNEL = "proplab_jobs";

/** Job states. */
export const JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export type JobState = typeof JOB_STATES[number];

/** A job as the API shows it (SPEC §8). */
export interface Job {
  id: string;
  type: string;
  params: Record<string, unknown>;
  state: JobState;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  result: unknown;
}

/** A job as a worker holds it: with its lease and retry budget. */
export interface ClaimedJob extends Job {
  maxAttempts: number;
  lockedBy: string;
}

interface JobRow {
  id: string;
  type: string;
  params: Record<string, unknown>;
  state: JobState;
  attempts: number;
  max_attempts: number;
  locked_by: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  error: string | null;
  result: unknown;
}

const COLUMNS = `id, type, params, state, attempts, max_attempts, locked_by, created_at,
  started_at, finished_at, error, result`;

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

function toJob(r: JobRow): Job {
  return {
    id: r.id,
    type: r.type,
    params: r.params,
    state: r.state,
    attempts: Number(r.attempts),
    createdAt: iso(r.created_at)!,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    error: r.error,
    result: r.result ?? null,
  };
}

function toClaimed(r: JobRow): ClaimedJob {
  return { ...toJob(r), maxAttempts: Number(r.max_attempts), lockedBy: r.locked_by ?? "" };
}

/** Queues a job and NOTIFYs workers (delivered when the surrounding transaction commits). */
export async function insertJob(
  q: Queryable,
  job: { id: string; type: string; params: unknown; createdBy: string; maxAttempts?: number },
): Promise<Job> {
  const rows = await q.query<JobRow>(
    // Millisecond timestamps: the list cursor carries milliseconds, so rows must not differ below.
    `insert into jobs (id, type, params, created_by, max_attempts, created_at)
     values ($1, $2, $3::text::jsonb, $4, $5, date_trunc('milliseconds', now()))
     returning ${COLUMNS}`,
    [job.id, job.type, JSON.stringify(job.params), job.createdBy, job.maxAttempts ?? 3],
  );
  await q.query("select pg_notify($1, $2)", [JOBS_CHANNEL, job.id]);
  return toJob(rows[0]);
}

/** One job by id, or null. */
export async function findJobById(q: Queryable, id: string): Promise<Job | null> {
  const rows = await q.query<JobRow>(`select ${COLUMNS} from jobs where id = $1`, [id]);
  return rows.length ? toJob(rows[0]) : null;
}

/** Filters of the job list. */
export interface JobFilter {
  state?: JobState;
  type?: string;
}

/** A page of jobs, newest first: `limit + 1` rows so the caller knows whether there is more. */
export async function listJobs(
  q: Queryable,
  filter: JobFilter,
  page: { limit: number; cursor: Cursor | null },
): Promise<Job[]> {
  const rows = await q.query<JobRow>(
    `select ${COLUMNS} from jobs
      where ($1::text is null or state = $1) and ($2::text is null or type = $2)
        and ($3::timestamptz is null or (created_at, id) < ($3::timestamptz, $4::uuid))
      order by created_at desc, id desc limit $5`,
    [
      filter.state ?? null,
      filter.type ?? null,
      page.cursor?.at ?? null,
      page.cursor?.id ?? null,
      page.limit + 1,
    ],
  );
  return rows.map(toJob);
}

/**
 * Claims the oldest due queued job for `workerId` in one statement. SKIP LOCKED lets any number
 * of workers race here: each row is taken by exactly one of them.
 *
 * Jobs of one date run in the order they were queued: a job is not claimable while an earlier
 * job for its date is queued (a retry waiting out its backoff included) or running, so
 * ingest → settle → score-day queued together never overlap. Days run in parallel. The
 * check reads without locking, and a job stays queued or running in every snapshot until it
 * ends, so two workers racing cannot both pass it.
 */
export async function claimNextJob(q: Queryable, workerId: string): Promise<ClaimedJob | null> {
  const rows = await q.query<JobRow>(
    `update jobs set state = 'running', attempts = attempts + 1, locked_by = $1,
            heartbeat_at = now(), started_at = coalesce(started_at, now())
      where id = (
        select j.id from jobs j
         where j.state = 'queued' and j.run_after <= now()
           and not exists (
             select 1 from jobs e
              where e.state in ('queued', 'running')
                and e.params ->> 'date' = j.params ->> 'date'
                and e.seq < j.seq)
         order by j.run_after, j.seq limit 1 for update skip locked)
      returning ${COLUMNS}`,
    [workerId],
  );
  return rows.length ? toClaimed(rows[0]) : null;
}

/** The lease a worker holds on a job: its id, and the attempt it is running. */
export interface Lease {
  jobId: string;
  workerId: string;
  attempt: number;
}

const LEASE = "id = $1 and locked_by = $2 and attempts = $3 and state = 'running'";
const leaseParams = (l: Lease) => [l.jobId, l.workerId, l.attempt];

/**
 * Renews the heartbeat; answers whether a cancel was requested, or null when the lease is lost
 * (the job was reclaimed after a lapsed heartbeat).
 */
export async function heartbeatJob(q: Queryable, lease: Lease): Promise<boolean | null> {
  const rows = await q.query<{ cancel_requested: boolean }>(
    `update jobs set heartbeat_at = now() where ${LEASE} returning cancel_requested`,
    leaseParams(lease),
  );
  return rows.length ? rows[0].cancel_requested : null;
}

/**
 * Locks the job row inside a handler's transaction if the lease still holds: the fence that
 * keeps a worker whose job was reclaimed from committing data after the new owner.
 */
export async function lockJobLease(q: Queryable, lease: Lease): Promise<boolean> {
  const rows = await q.query(`select 1 from jobs where ${LEASE} for update`, leaseParams(lease));
  return rows.length === 1;
}

/** Ends a running job as succeeded, failed or cancelled; false when the lease was lost. */
export async function finishJob(
  q: Queryable,
  lease: Lease,
  end: { state: "succeeded" | "failed" | "cancelled"; result?: unknown; error?: string | null },
): Promise<boolean> {
  const rows = await q.query(
    `update jobs set state = $4, result = $5::text::jsonb, error = $6, finished_at = now(),
            heartbeat_at = null
      where ${LEASE} returning id`,
    [
      ...leaseParams(lease),
      end.state,
      end.result === undefined ? null : JSON.stringify(end.result),
      end.error ?? null,
    ],
  );
  return rows.length === 1;
}

/** Puts a failed attempt back in the queue, due after `delayMs` (cancelled if one was asked). */
export async function retryJob(
  q: Queryable,
  lease: Lease,
  error: string,
  delayMs: number,
): Promise<boolean> {
  const rows = await q.query(
    `update jobs set state = case when cancel_requested then 'cancelled' else 'queued' end,
            finished_at = case when cancel_requested then now() end,
            error = $4, heartbeat_at = null,
            run_after = now() + $5::int * interval '1 millisecond'
      where ${LEASE} returning id`,
    [...leaseParams(lease), error, Math.round(delayMs)],
  );
  return rows.length === 1;
}

/** Gives a job back to the queue without spending an attempt (graceful stop mid-job). */
export async function releaseJob(q: Queryable, lease: Lease): Promise<boolean> {
  const rows = await q.query(
    `update jobs set state = 'queued', attempts = attempts - 1, heartbeat_at = null,
            run_after = now()
      where ${LEASE} returning id`,
    leaseParams(lease),
  );
  return rows.length === 1;
}

/**
 * Reclaims running jobs whose heartbeat is older than `staleMs` (their worker died): back to
 * the queue while attempts remain, else failed; their open pipeline runs are closed as failed.
 * One statement, so two reclaimers never both act on a job.
 */
export async function reclaimStaleJobs(
  q: Queryable,
  staleMs: number,
): Promise<{ id: string; state: JobState }[]> {
  return await q.query<{ id: string; state: JobState }>(
    `with lapsed as (
       select id from jobs
        where state = 'running' and heartbeat_at < now() - $1::int * interval '1 millisecond'
        for update skip locked
     ), moved as (
       update jobs j set
         state = case when j.cancel_requested then 'cancelled'
                      when j.attempts < j.max_attempts then 'queued' else 'failed' end,
         error = case when j.cancel_requested then 'cancelled by request (worker lost)'
                      else 'worker lost: heartbeat lapsed' end,
         finished_at = case when j.cancel_requested or j.attempts >= j.max_attempts
                            then now() end,
         heartbeat_at = null, run_after = now()
         from lapsed where j.id = lapsed.id
       returning j.id, j.state
     ), runs as (
       update pipeline_runs set state = 'failed', finished_at = now(),
              error = 'worker lost: heartbeat lapsed'
        where state = 'running' and job_id in (select id from moved)
     )
     select id, state from moved`,
    [Math.round(staleMs)],
  );
}

/**
 * Cancels in one statement: a queued job becomes cancelled at once; a running one is flagged
 * and stops at its next step boundary. Null when the job is missing or already finished.
 */
export async function cancelJob(q: Queryable, id: string): Promise<Job | null> {
  const rows = await q.query<JobRow>(
    `update jobs set cancel_requested = true,
            state = case when state = 'queued' then 'cancelled' else state end,
            finished_at = case when state = 'queued' then now() else finished_at end,
            error = case when state = 'queued' then 'cancelled by request' else error end
      where id = $1 and state in ('queued', 'running')
      returning ${COLUMNS}`,
    [id],
  );
  return rows.length ? toJob(rows[0]) : null;
}

/** Jobs waiting to run (for health and metrics). */
export async function countQueuedJobs(q: Queryable): Promise<number> {
  const rows = await q.query<{ n: number }>(
    "select count(*)::int as n from jobs where state = 'queued'",
  );
  return rows[0].n;
}
