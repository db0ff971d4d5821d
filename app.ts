/**
 * The request pipeline: match → authenticate → authorize → idempotency → rate limit →
 * handler, with one mapping of errors to problem+json.
 */
import { headPadding } from "./lib/one_write.ts";
import { ApiError, internalError, problemParts, problemResponse } from "./lib/problem.ts";
import {
  checkHeaderSize,
  clientIpFrom,
  refuseRepeated,
  requestIdFrom,
  withBodyDeadline,
} from "./lib/http.ts";
import { authorize, StalePrincipal } from "./lib/policy.ts";
import { createRouter } from "./lib/router.ts";
import { corsHeaders, isPreflight, preflightResponse } from "./lib/cors.ts";
import { errorFields } from "./lib/log.ts";
import { isUnavailable } from "./db/client.ts";
import type { Ctx, Deps, Route } from "./routes/context.ts";
import type { ResponseParts } from "./lib/http.ts";

/** Connection facts Deno.serve hands the fetch handler. */
export interface ConnInfo {
  remoteAddr?: { hostname?: string };
}

/** The HTTP application: a fetch handler over the route table. */
export interface App {
  fetch(req: Request, info?: ConnInfo): Promise<Response>;
  /**
   * Starts draining: requests already in flight run to the end; new ones get 503 with
   * `Connection: close`. Resolves true once none is left, false if `graceMs` ran out first.
   */
  drain(graceMs: number): Promise<boolean>;
}

// Set on every answer by the app, over any a handler gave.
const COMMON_HEADERS = new Set(["x-request-id", "x-content-type-options"]);

/** Builds the application from its dependencies and route table (compiled once, here). */
export function createApp(deps: Deps, routes: readonly Route[]): App {
  const router = createRouter(routes);
  const { config, log } = deps;

  async function handle(ctx: Ctx): Promise<Response> {
    checkHeaderSize(ctx.req.headers);
    const cors = corsHeaders(ctx.req.headers.get("origin"), config.corsOrigins);
    cors?.forEach((v, k) => ctx.responseHeaders.set(k, v));
    if (cors && isPreflight(ctx.req)) return preflightResponse(cors);
    const match = router.match(ctx.req.method, ctx.url.pathname);
    if (match.kind === "not-found") {
      throw new ApiError("not-found", `No resource at ${ctx.url.pathname}`);
    }
    if (match.kind === "method-not-allowed") {
      throw new ApiError("method-not-allowed", `${ctx.req.method} is not allowed here`, {
        headers: { allow: match.allow.join(", ") },
      });
    }
    const route = match.route;
    ctx.route = route;
    ctx.params = match.params;
    await admit(ctx, route, false);
    if (route.precheck) await precheck(ctx, route);
    const next = async () => {
      if (route.limit && deps.rateLimit) {
        const refusal = await limit(ctx, route);
        if (refusal) return toProblem(refusal, ctx);
      }
      // Whatever ran before, a handler never sees a principal nobody has checked.
      if (ctx.principal?.recalledFrom) await admit(ctx, route, true);
      if (route.query && ctx.url.search) refuseRepeated(ctx.url.searchParams, route.query);
      return await route.handler(ctx);
    };
    if (route.idempotent && deps.idempotency) return await deps.idempotency(ctx, route, next);
    return await next();
  }

  // Authenticates and authorizes. A speculative principal (recalled, unchecked) that would be
  // refused is looked up afresh first: the refusal must hold for the caller as it is now.
  async function admit(ctx: Ctx, route: Route, fresh: boolean): Promise<void> {
    ctx.principal = route.auth.length && deps.authenticate
      ? await deps.authenticate(ctx.req, route, fresh)
      : null;
    const decision = authorize(ctx.principal, route);
    if (decision.allow) return;
    if (ctx.principal?.recalledFrom) return await admit(ctx, route, true);
    throw new ApiError(decision.status === 401 ? "unauthorized" : "forbidden", decision.reason);
  }

  // A route's own policy, before anything is charged; a refusal of a speculative principal
  // is decided again for the caller as it is now, as in `admit`.
  async function precheck(ctx: Ctx, route: Route): Promise<void> {
    try {
      await route.precheck!(ctx);
    } catch (err) {
      if (!ctx.principal?.recalledFrom) throw err;
      await admit(ctx, route, true);
      await route.precheck!(ctx);
    }
  }

  // The rate limit, which also checks a speculative principal: when that no longer holds,
  // nothing was charged, and the request is admitted again from a fresh lookup.
  async function limit(ctx: Ctx, route: Route): Promise<ApiError | null> {
    try {
      return await deps.rateLimit!(ctx, route);
    } catch (err) {
      if (!(err instanceof StalePrincipal)) throw err;
      await admit(ctx, route, true);
      return await deps.rateLimit!(ctx, route);
    }
  }

  function toProblem(err: unknown, ctx: Ctx): Response {
    let apiErr: ApiError;
    if (err instanceof ApiError) {
      apiErr = err;
    } else if (isUnavailable(err)) {
      // The outage itself is logged once by the database client; this is per request.
      log.debug("answered 503: database unavailable", { requestId: ctx.requestId });
      apiErr = new ApiError("database-unavailable", "The database is unavailable; retry shortly", {
        headers: { "retry-after": "2" },
      });
    } else {
      log.error("unhandled error", { requestId: ctx.requestId, ...errorFields(err) });
      apiErr = internalError();
    }
    const parts = problemParts(apiErr, {
      errorsBase: config.errorsBase,
      instance: ctx.url.pathname,
      requestId: ctx.requestId,
    });
    if (apiErr.status === 401) {
      const invalid = apiErr.code === "invalid-token" ? ', error="invalid_token"' : "";
      parts.headers.push(["www-authenticate", `Bearer realm="proplab"${invalid}`]);
    } else if (apiErr.code === "forbidden" && ctx.principal && ctx.principal.kind !== "apiKey") {
      // A Bearer credential that holds too little (RFC 6750 §3.1).
      parts.headers.push([
        "www-authenticate",
        'Bearer realm="proplab", error="insufficient_scope"',
      ]);
    }
    return ctx.reply(parts);
  }

  function shuttingDown(req: Request): Response {
    const requestId = requestIdFrom(req.headers.get("x-request-id"));
    const err = new ApiError("shutting-down", "The server is shutting down; retry shortly", {
      headers: { "retry-after": "1", connection: "close", "x-request-id": requestId },
    });
    const instance = new URL(req.url).pathname;
    return problemResponse(err, { errorsBase: config.errorsBase, instance, requestId });
  }

  // The headers `finish` would give the answer, set before it is built: the request's
  // headers and the common ones replace the handler's of the same name, as there. A small
  // answer may get padding that sends it in one write (lib/one_write.ts).
  function reply(ctx: Ctx, { status, body, headers }: ResponseParts): Response {
    const own = ctx.responseHeaders;
    const all = headers.filter(([k]) => !own.has(k) && !COMMON_HEADERS.has(k));
    for (const entry of own) all.push(entry);
    all.push(["x-request-id", ctx.requestId], ["x-content-type-options", "nosniff"]);
    if (!all.some(([k]) => k === "cache-control")) all.push(["cache-control", "no-store"]);
    const pad = headPadding(all, body);
    if (pad) all.push(pad);
    return new Response(body, { status, headers: all });
  }

  // `complete`: built by `reply`, with its headers already; they are left alone.
  function finish(res: Response, ctx: Ctx, complete: boolean): Response {
    if (!complete) {
      const h = res.headers;
      for (const [k, v] of ctx.responseHeaders) h.set(k, v);
      h.set("x-request-id", ctx.requestId);
      h.set("x-content-type-options", "nosniff");
      if (!h.has("cache-control")) h.set("cache-control", "no-store");
    }
    if (ctx.req.method === "HEAD" && res.body) {
      res.body.cancel().catch(() => {});
      return new Response(null, { status: res.status, headers: res.headers });
    }
    return res;
  }

  async function serveOne(req: Request, info?: ConnInfo): Promise<Response> {
    const started = performance.now();
    // The answer built by ctx.reply, if any: its headers are complete (see `finish`).
    let replied: Response | null = null;
    const ctx: Ctx = {
      req: withBodyDeadline(req, config.bodyTimeoutMs),
      url: new URL(req.url),
      params: {},
      requestId: requestIdFrom(req.headers.get("x-request-id")),
      clientIp: clientIpFrom(req.headers, info?.remoteAddr?.hostname ?? "", config.trustProxy),
      principal: null,
      db: deps.db,
      deps,
      responseHeaders: new Map(),
      reply: (parts) => replied = reply(ctx, parts),
    };
    let res: Response;
    try {
      res = await handle(ctx);
    } catch (err) {
      res = toProblem(err, ctx);
    }
    res = finish(res, ctx, res === replied);
    if (res.status >= 500 && deps.recordError) await deps.recordError(ctx, res.status);
    log.info("request", {
      method: req.method,
      path: ctx.url.pathname,
      status: res.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      requestId: ctx.requestId,
      principal: ctx.principal?.subject ?? null,
    });
    return res;
  }

  let inFlight = 0;
  let draining = false;
  let onIdle: (() => void) | null = null;

  return {
    drain(graceMs) {
      draining = true;
      if (inFlight === 0) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), graceMs);
        onIdle = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
    },
    async fetch(req, info) {
      if (draining) return shuttingDown(req);
      inFlight++;
      try {
        return await serveOne(req, info);
      } finally {
        inFlight--;
        if (inFlight === 0) onIdle?.();
      }
    },
  };
}
