/** Pipeline runs: one row per execution (attempt) of a job, with its steps and error. */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";

/** One finished step of a run. */
export interface RunStep {
  name: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  rows: number;
}

/** A pipeline run as the API shows it. */
export interface PipelineRun {
  id: string;
  jobId: string;
  type: string;
  attempt: number;
  state: "running" | "succeeded" | "failed" | "cancelled";
  steps: RunStep[];
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

interface RunRow {
  id: string;
  job_id: string;
  type: string;
  attempt: number;
  state: PipelineRun["state"];
  steps: RunStep[];
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
}

const COLUMNS = "id, job_id, type, attempt, state, steps, started_at, finished_at, error";

function toRun(r: RunRow): PipelineRun {
  return {
    id: r.id,
    jobId: r.job_id,
    type: r.type,
    attempt: Number(r.attempt),
    state: r.state,
    steps: r.steps,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    error: r.error,
  };
}

/** Opens the run of one attempt. */
export async function insertPipelineRun(
  q: Queryable,
  run: { id: string; jobId: string; type: string; attempt: number },
): Promise<void> {
  await q.query(
    `insert into pipeline_runs (id, job_id, type, attempt, state, started_at)
     values ($1, $2, $3, $4, 'running', date_trunc('milliseconds', now()))`,
    [run.id, run.jobId, run.type, run.attempt],
  );
}

/**
 * Appends one finished step to a run and answers whether its job was asked to cancel since
 * (one round trip for both: the worker checks at every step boundary).
 */
export async function appendPipelineStep(
  q: Queryable,
  runId: string,
  step: RunStep,
): Promise<boolean> {
  const rows = await q.query<{ cancel_requested: boolean }>(
    `update pipeline_runs r set steps = r.steps || jsonb_build_array($2::text::jsonb)
       from jobs j where r.id = $1 and j.id = r.job_id
     returning j.cancel_requested`,
    [runId, JSON.stringify(step)],
  );
  return rows.length ? rows[0].cancel_requested : false;
}

/** Closes a run that is still open (a reclaimer may have closed it already). */
export async function finishPipelineRun(
  q: Queryable,
  runId: string,
  state: "succeeded" | "failed" | "cancelled",
  error: string | null,
): Promise<void> {
  await q.query(
    `update pipeline_runs set state = $2, error = $3, finished_at = now()
      where id = $1 and state = 'running'`,
    [runId, state, error],
  );
}

/** A page of runs, newest first (`limit + 1` rows), optionally of one job. */
export async function listPipelineRuns(
  q: Queryable,
  filter: { jobId?: string },
  page: { limit: number; cursor: Cursor | null },
): Promise<PipelineRun[]> {
  const rows = await q.query<RunRow>(
    `select ${COLUMNS} from pipeline_runs
      where ($1::uuid is null or job_id = $1)
        and ($2::timestamptz is null or (started_at, id) < ($2::timestamptz, $3::uuid))
      order by started_at desc, id desc limit $4`,
    [filter.jobId ?? null, page.cursor?.at ?? null, page.cursor?.id ?? null, page.limit + 1],
  );
  return rows.map(toRun);
}
