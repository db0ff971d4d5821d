/** What a pipeline handler sees of the job it runs, and the errors it may throw. */
import type { Queryable } from "../db/client.ts";
import type { ClaimedJob } from "../db/jobs.ts";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";

/** What a step reports: the rows it touched and the value it hands to the next step. */
export interface StepResult<T> {
  rows: number;
  value: T;
}

/** One running attempt of a job, as its handler uses it. */
export interface JobContext {
  job: ClaimedJob;
  config: Config;
  log: Logger;
  /** For reads outside a transaction (never inside `transaction`). */
  db: Queryable;
  /**
   * Runs one named step, recorded in the pipeline run with its timing and row count. Before
   * the step it checks for a cancel request or a worker stop: those end the job here.
   */
  step<T>(name: string, fn: () => Promise<StepResult<T>>): Promise<T>;
  /** A transaction that commits only while this worker still holds the job's lease. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

/** A pipeline handler: runs the job's steps and returns the job's `result`. */
export type JobHandler = (ctx: JobContext) => Promise<unknown>;

/**
 * A failure with a message fit for the job's `error` field. Not retryable by default: bad
 * input stays bad on the next attempt.
 */
export class JobError extends Error {
  constructor(message: string, readonly retryable = false) {
    super(message);
    this.name = "JobError";
  }
}
