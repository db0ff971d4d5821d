/** The types every route file shares: dependencies, request context, route entries. */
import type { ApiError } from "../lib/problem.ts";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import type { Principal, Requirement } from "../lib/policy.ts";
import type { RouteShape } from "../lib/router.ts";
import type { Db, Queryable } from "../db/client.ts";
import type { ResponseParts } from "../lib/http.ts";
import type { Settings } from "../db/settings.ts";
import type { Identity } from "./authenticate.ts";
import type { DataCache } from "./data.ts";
import type { WorkerStatus } from "../worker/worker.ts";

/** Everything a handler may use, built once in main and passed in. */
export interface Deps {
  config: Config;
  db: Db;
  log: Logger;
  settings: Settings;
  /** Milliseconds since the epoch; tests pass a fixed clock. */
  now: () => number;
  version: string;
  instanceId: string;
  startedAt: number;
  /** This instance's job worker, when it runs one (WORKER=on): for health reports. */
  worker?: { status(): WorkerStatus };
  /**
   * Resolves the request's credential; null when it carries none. Throws ApiError when
   * invalid. The principal may be speculative (lib/policy.ts); `fresh` asks for a lookup.
   */
  authenticate?: (req: Request, route: Route, fresh?: boolean) => Promise<Principal | null>;
  /**
   * Charges the route's rate-limit class for `ctx.principal`; sets the RateLimit headers on
   * `ctx.responseHeaders` and returns the 429 to answer when a window is exhausted, or null
   * to go on. Returned, not thrown: a throw rejects a promise in each async frame up to the
   * app, ~0.8 µs of a 429's ~26 (alternated runs of the 429-heavy bench).
   */
  rateLimit?: (ctx: Ctx, route: Route) => Promise<ApiError | null>;
  /**
   * Runs `next` under the request's Idempotency-Key (if any): a replay returns the stored
   * response without calling `next` (so no rate-limit charge and no second effect).
   */
  idempotency?: (ctx: Ctx, route: Route, next: () => Promise<Response>) => Promise<Response>;
  /** Records a 5xx answer for /ops/errors (request id, method, route pattern, status only). */
  recordError?: (ctx: Ctx, status: number) => Promise<void>;
  /** The route table being served (what /openapi.json describes). */
  routes?: readonly Route[];
  /** Signing keys, password hasher and credential usage of the identity routes. */
  identity?: Identity;
  /** Rendered data pages kept until the data changes (routes/data.ts); absent = no cache. */
  dataCache?: DataCache;
}

/** One request as the pipeline and the handler see it. */
export interface Ctx {
  req: Request;
  url: URL;
  params: Record<string, string>;
  /** The matched route, once matched. */
  route?: Route;
  requestId: string;
  clientIp: string;
  principal: Principal | null;
  /**
   * Where this request's queries go: the pool, or on an idempotent route the transaction
   * that also stores the response. Inside a request, query through `ctx.db`, never
   * `deps.db` (PGlite has one connection: a second query outside the transaction waits forever).
   */
  db: Queryable;
  deps: Deps;
  /**
   * Headers every answer to this request carries (rate-limit fields, for example), by
   * lowercase name.
   */
  responseHeaders: Map<string, string>;
  /**
   * Builds the answer with every header it will carry (the request's and the common ones) in
   * one go. Equivalent to returning `new Response(...)`, which the app completes afterwards;
   * cheaper on hot routes, because Deno converts a response's headers when it is built and
   * again after any change.
   */
  reply(parts: ResponseParts): Response;
  /** The data versions the request gate read for this request, when it ran (routes/data.ts). */
  versions?: Record<string, number>;
}

/** A route handler: validate → decide → store → respond. */
export type Handler = (ctx: Ctx) => Promise<Response> | Response;

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses it), for openapi.json. */
export type JsonSchema = Record<string, unknown>;

/** A query parameter as openapi.json documents it; the handler validates it. */
export interface QueryParam {
  name: string;
  description: string;
  required?: boolean;
  schema: JsonSchema;
}

/** A success answer as openapi.json documents it (no schema: no body). */
export interface Success {
  description: string;
  schema?: JsonSchema;
}

/** Rate-limit classes a route can declare. */
export type LimitClass = "data" | "login" | "ops";

/** One entry of the route table. */
export interface Route extends RouteShape, Requirement {
  /** One line for the OpenAPI description. */
  summary: string;
  limit?: LimitClass;
  /** Creating POST: honours Idempotency-Key. */
  idempotent?: boolean;
  /** Its query parameters, for openapi.json (tests/openapi_test.ts checks them by calling). */
  query?: readonly QueryParam[];
  /** Its JSON body, for openapi.json (checked the same way). */
  body?: JsonSchema;
  /**
   * Its success answers by status, for openapi.json. A test server checks every 2xx answer
   * against them (tests/support/server.ts).
   */
  responses?: Readonly<Record<number, Success>>;
  /**
   * Policy that depends on the request itself (its body, the row it targets): run after
   * authentication and before the rate limit, so that its refusal (403) charges nothing.
   */
  precheck?: (ctx: Ctx) => Promise<void>;
  handler: Handler;
}
