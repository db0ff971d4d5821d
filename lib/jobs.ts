/** Pure decisions of the job queue: retry backoff. */

/** Backoff settings: the first retry waits `baseMs`, doubling up to `maxMs`. */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/**
 * How long to wait before attempt `attempt + 1` after attempt `attempt` failed: exponential,
 * capped, with "equal jitter" (half fixed, half random from `rand` in [0, 1)) so workers that
 * failed together do not retry together.
 */
export function backoffMs(attempt: number, b: Backoff, rand: number): number {
  const exp = Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * rand);
}

/** After a failed attempt: retry when attempts remain and the error is transient. */
export function shouldRetry(attempts: number, maxAttempts: number, retryable: boolean): boolean {
  return retryable && attempts < maxAttempts;
}
