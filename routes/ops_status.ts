/** Ops read endpoints: health, services, errors, freshness (ops:read). */
import { json } from "../lib/http.ts";
import { PAGE_QUERY, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { DATASETS, freshnessOf } from "../lib/freshness.ts";
import { countJobsByState, findDatasetFreshness } from "../db/data.ts";
import { INSTANCE_STALE_MS, listInstances } from "../db/instances.ts";
import { type ErrorEntry, findErrorEntries } from "../db/request_errors.ts";
import type { Ctx, Route } from "./context.ts";
import { ERROR_ENTRY, FRESHNESS, HEALTH, page, SERVICES } from "./schemas.ts";

const OPS_READ = {
  auth: ["jwt", "opsToken"],
  tier: "admin",
  scope: "ops:read",
  limit: "ops",
} as const;

async function health(ctx: Ctx): Promise<Response> {
  const { deps } = ctx;
  const started = performance.now();
  const jobs = await countJobsByState(ctx.db); // doubles as the database check
  const latencyMs = Math.round((performance.now() - started) * 100) / 100;
  const instances = await listInstances(ctx.db);
  const liveWorkers =
    instances.filter((i) =>
      i.role === "api+worker" && deps.now() - i.heartbeatAt.getTime() <= INSTANCE_STALE_MS
    ).length;
  return json({
    status: "ok",
    version: deps.version,
    instanceId: deps.instanceId,
    uptimeSeconds: Math.max(0, Math.floor((deps.now() - deps.startedAt) / 1000)),
    database: { status: "up", kind: deps.db.kind, latencyMs },
    queue: { depth: jobs.queued, running: jobs.running },
    worker: {
      state: deps.worker?.status().state ?? "disabled",
      here: deps.worker?.status() ?? null,
      liveWorkers,
    },
  });
}

async function services(ctx: Ctx): Promise<Response> {
  const now = ctx.deps.now();
  const items = (await listInstances(ctx.db)).map((i) => ({
    id: i.id,
    role: i.role,
    version: i.version,
    hostname: i.hostname,
    pid: i.pid,
    startedAt: i.startedAt.toISOString(),
    lastHeartbeatAt: i.heartbeatAt.toISOString(),
    stale: now - i.heartbeatAt.getTime() > INSTANCE_STALE_MS,
    self: i.id === ctx.deps.instanceId,
  }));
  return json({ items, staleAfterSeconds: INSTANCE_STALE_MS / 1000 });
}

function errorJson(e: ErrorEntry): Record<string, unknown> {
  const at = e.at.toISOString();
  if (e.kind === "request") {
    const { kind, id, requestId, method, route, status } = e;
    return { kind, id, at, requestId, method, route, status };
  }
  const { kind, id, jobType, attempts, error } = e;
  return { kind, id, at, jobId: id, jobType, attempts, error };
}

async function errors(ctx: Ctx): Promise<Response> {
  const page = parsePageRequest(ctx.url.searchParams);
  const rows = await findErrorEntries(ctx.db, page.cursor, page.limit + 1);
  const { items, nextCursor } = pageOf(rows, page.limit, (e) => e);
  return json({ items: items.map(errorJson), nextCursor });
}

async function freshness(ctx: Ctx): Promise<Response> {
  const { deps } = ctx;
  const stored = await findDatasetFreshness(ctx.db);
  const items = DATASETS.map((dataset) => {
    const row = stored.get(dataset) ?? null;
    const max = Number(deps.settings.get(`freshness.${dataset}.maxAgeMinutes`));
    return {
      dataset,
      ...freshnessOf(row?.updatedAt ?? null, max, deps.now()),
      rowCount: row?.rowCount ?? null,
    };
  });
  return json({ items });
}

/** Routes of this file. */
export const opsStatusRoutes: Route[] = [
  {
    method: "GET",
    path: "/api/v1/ops/health",
    summary: "Health of this instance, the database, the queue and the workers",
    ...OPS_READ,
    responses: { 200: { description: "Health", schema: HEALTH } },
    handler: health,
  },
  {
    method: "GET",
    path: "/api/v1/ops/services",
    summary: "Running instances with their heartbeats",
    ...OPS_READ,
    responses: { 200: { description: "Instances", schema: SERVICES } },
    handler: services,
  },
  {
    method: "GET",
    path: "/api/v1/ops/errors",
    summary: "Recent 5xx answers and failed jobs, newest first",
    ...OPS_READ,
    query: PAGE_QUERY,
    responses: { 200: { description: "A page of errors", schema: page(ERROR_ENTRY) } },
    handler: errors,
  },
  {
    method: "GET",
    path: "/api/v1/ops/freshness",
    summary: "Age of each dataset against its staleness threshold",
    ...OPS_READ,
    responses: { 200: { description: "Freshness of each dataset", schema: FRESHNESS } },
    handler: freshness,
  },
];
