/** Liveness and readiness: unauthenticated. */
import { ApiError } from "../lib/problem.ts";
import { json } from "../lib/http.ts";
import { withTimeout } from "../lib/async.ts";
import type { Ctx, Route } from "./context.ts";
import { LIVE, READY } from "./schemas.ts";

const READY_TIMEOUT_MS = 1500;

function healthz(ctx: Ctx): Response {
  return json({ status: "ok", version: ctx.deps.version });
}

async function readyz(ctx: Ctx): Promise<Response> {
  try {
    await withTimeout(ctx.deps.db.ping(), READY_TIMEOUT_MS, "ping timed out");
  } catch {
    throw new ApiError("database-unavailable", "The database does not answer", {
      headers: { "retry-after": "2" },
    });
  }
  return json({ status: "ready", database: ctx.deps.db.kind });
}

/** Routes of this file. */
export const healthRoutes: Route[] = [
  {
    method: "GET",
    path: "/healthz",
    auth: [],
    summary: "Liveness",
    responses: { 200: { description: "The process is up", schema: LIVE } },
    handler: healthz,
  },
  {
    method: "GET",
    path: "/readyz",
    auth: [],
    summary: "Readiness",
    responses: { 200: { description: "The database answers", schema: READY } },
    handler: readyz,
  },
];
