/** Recent 5xx answers, and the error feed of /ops/errors (5xx plus failed jobs). */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";

/** What is kept of a 5xx: no body, no header value, no secret. */
export interface RequestErrorInput {
  requestId: string;
  method: string;
  /** The matched route pattern (e.g. `/api/v1/data/picks/:id`), never the raw path. */
  route: string | null;
  status: number;
  instanceId: string;
  at: Date;
}

/** Records one 5xx answer. */
export async function insertRequestError(q: Queryable, e: RequestErrorInput): Promise<void> {
  await q.query(
    `insert into request_errors (id, request_id, method, route, status, instance_id, occurred_at)
     values ($1, $2, $3, $4, $5, $6, $7)`,
    [crypto.randomUUID(), e.requestId, e.method, e.route, e.status, e.instanceId, e.at],
  );
}

/** Drops recorded 5xx older than `before` (the table is a recent window, not an archive). */
export async function deleteRequestErrorsBefore(q: Queryable, before: Date): Promise<void> {
  await q.query("delete from request_errors where occurred_at < $1", [before]);
}

/** One entry of /ops/errors: a 5xx answer or a failed job. */
export type ErrorEntry =
  | {
    kind: "request";
    id: string;
    at: Date;
    requestId: string;
    method: string;
    route: string | null;
    status: number;
  }
  | { kind: "job"; id: string; at: Date; jobType: string; attempts: number; error: string | null };

/**
 * 5xx answers and failed jobs, newest first, strictly older than `cursor`. Times are
 * compared at millisecond precision, the precision of the cursor.
 */
export async function findErrorEntries(
  q: Queryable,
  cursor: Cursor | null,
  limit: number,
): Promise<ErrorEntry[]> {
  const rows = await q.query<Record<string, unknown>>(
    `select * from (
       select 'request' as kind, id::text as id, date_trunc('milliseconds', occurred_at) as at,
              request_id, method, route, status, null::text as job_type, null::int as attempts,
              null::text as error
         from request_errors
       union all
       select 'job', id::text, date_trunc('milliseconds', coalesce(finished_at, created_at)),
              null, null, null, null, type, attempts, error
         from jobs where state = 'failed'
     ) e
     where $1::timestamptz is null or (e.at, e.id) < ($1::timestamptz, $2::text)
     order by e.at desc, e.id desc
     limit $3`,
    [cursor?.at ?? null, cursor?.id ?? null, limit],
  );
  return rows.map(toEntry);
}

function toEntry(r: Record<string, unknown>): ErrorEntry {
  const base = { id: String(r.id), at: new Date(r.at as Date) };
  if (r.kind === "request") {
    return {
      kind: "request",
      ...base,
      requestId: String(r.request_id),
      method: String(r.method),
      route: r.route === null ? null : String(r.route),
      status: Number(r.status),
    };
  }
  return {
    kind: "job",
    ...base,
    jobType: String(r.job_type),
    attempts: Number(r.attempts),
    error: r.error === null ? null : String(r.error),
  };
}
