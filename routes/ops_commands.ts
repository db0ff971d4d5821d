/** Ops commands and the job queue: queue and cancel jobs, list jobs and pipeline runs. */
import {
  cancelJob,
  findJobById,
  insertJob,
  JOB_STATES,
  type JobState,
  listJobs,
} from "../db/jobs.ts";
import { listPipelineRuns } from "../db/pipeline_runs.ts";
import { COMMAND_SCHEMA, JOB_TYPES, validateCommand } from "../lib/commands.ts";
import { json, readJson } from "../lib/http.ts";
import { PAGE_QUERY, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { ApiError, invalidField } from "../lib/problem.ts";
import type { Ctx, Route } from "./context.ts";
import { JOB, page, PIPELINE_RUN } from "./schemas.ts";

const BASE = "/api/v1/ops";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function jobIdFrom(ctx: Ctx): string {
  const id = ctx.params.id ?? "";
  if (!UUID.test(id)) throw new ApiError("not-found", `No job ${id}`);
  return id.toLowerCase();
}

function oneOf<T extends string>(
  params: URLSearchParams,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  if (!(allowed as readonly string[]).includes(v)) {
    throw invalidField(`/${name}`, `${name} must be one of ${allowed.join(", ")}`);
  }
  return v as T;
}

async function queueCommand(ctx: Ctx): Promise<Response> {
  const command = validateCommand(await readJson(ctx.req));
  const job = await insertJob(ctx.db, {
    id: crypto.randomUUID(),
    type: command.type,
    params: command.params,
    createdBy: ctx.principal!.subject,
  });
  return json(job, 202, { location: `${BASE}/jobs/${job.id}` });
}

async function cancelCommand(ctx: Ctx): Promise<Response> {
  const id = jobIdFrom(ctx);
  const job = await cancelJob(ctx.db, id);
  // Queued: cancelled now (200). Running: stops at its next step boundary (202).
  if (job) return json(job, job.state === "cancelled" ? 200 : 202);
  const existing = await findJobById(ctx.db, id);
  if (!existing) throw new ApiError("not-found", `No job ${id}`);
  throw new ApiError("conflict", `Job ${id} already finished as ${existing.state}`);
}

async function getJob(ctx: Ctx): Promise<Response> {
  const id = jobIdFrom(ctx);
  const job = await findJobById(ctx.db, id);
  if (!job) throw new ApiError("not-found", `No job ${id}`);
  return json(job);
}

async function listJobsRoute(ctx: Ctx): Promise<Response> {
  const q = ctx.url.searchParams;
  const page = parsePageRequest(q);
  const filter = {
    state: oneOf<JobState>(q, "state", JOB_STATES),
    type: oneOf(q, "type", JOB_TYPES),
  };
  const rows = await listJobs(ctx.db, filter, page);
  return json(pageOf(rows, page.limit, (j) => ({ at: j.createdAt, id: j.id })));
}

async function listRunsRoute(ctx: Ctx): Promise<Response> {
  const q = ctx.url.searchParams;
  const page = parsePageRequest(q);
  const jobId = q.get("jobId") ?? undefined;
  if (jobId !== undefined && !UUID.test(jobId)) {
    throw invalidField("/jobId", "jobId must be a UUID");
  }
  const rows = await listPipelineRuns(ctx.db, { jobId }, page);
  return json(pageOf(rows, page.limit, (r) => ({ at: r.startedAt, id: r.id })));
}

const OPS = { auth: ["jwt", "opsToken"], tier: "admin", limit: "ops" } as const;

/** Routes of this file. */
export const opsCommandRoutes: Route[] = [
  {
    ...OPS,
    method: "POST",
    path: `${BASE}/commands`,
    scope: "ops:commands",
    idempotent: true,
    summary: "Queue an ingest, settle or score-day job",
    body: COMMAND_SCHEMA,
    responses: { 202: { description: "The queued job", schema: JOB } },
    handler: queueCommand,
  },
  {
    ...OPS,
    method: "POST",
    path: `${BASE}/commands/:id/cancel`,
    scope: "ops:commands",
    summary: "Cancel a job: queued at once, running at its next step",
    responses: {
      200: { description: "Cancelled (it was queued)", schema: JOB },
      202: { description: "Cancelling: it stops at its next step", schema: JOB },
    },
    handler: cancelCommand,
  },
  {
    ...OPS,
    method: "GET",
    path: `${BASE}/jobs`,
    scope: "ops:read",
    summary: "List jobs, newest first (filter by state, type)",
    query: [
      { name: "state", description: "Only jobs in this state", schema: { enum: JOB_STATES } },
      { name: "type", description: "Only jobs of this type", schema: { enum: JOB_TYPES } },
      ...PAGE_QUERY,
    ],
    responses: { 200: { description: "A page of jobs", schema: page(JOB) } },
    handler: listJobsRoute,
  },
  {
    ...OPS,
    method: "GET",
    path: `${BASE}/jobs/:id`,
    scope: "ops:read",
    summary: "One job",
    responses: { 200: { description: "The job", schema: JOB } },
    handler: getJob,
  },
  {
    ...OPS,
    method: "GET",
    path: `${BASE}/pipeline-runs`,
    scope: "ops:read",
    summary: "List pipeline runs, newest first (filter by jobId)",
    query: [
      {
        name: "jobId",
        description: "Only the runs of this job",
        schema: { type: "string", format: "uuid" },
      },
      ...PAGE_QUERY,
    ],
    responses: { 200: { description: "A page of pipeline runs", schema: page(PIPELINE_RUN) } },
    handler: listRunsRoute,
  },
];
