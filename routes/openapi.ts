/** GET /api/v1/openapi.json: OpenAPI 3.1 generated from the route table, so it cannot drift. */
import { cachedJson } from "../lib/etag.ts";
import { NOT_MODIFIED } from "./schemas.ts";
import type { CredentialKind } from "../lib/policy.ts";
import type { Ctx, Route } from "./context.ts";

const SECURITY_SCHEMES: Record<CredentialKind, Record<string, unknown>> = {
  jwt: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "Access token from POST /api/v1/auth/login (15 minutes)",
  },
  apiKey: {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "API key from POST /api/v1/me/api-keys (data API only)",
  },
  opsToken: {
    type: "http",
    scheme: "bearer",
    description: "Ops token (prefix nplops_) from POST /api/v1/ops/tokens",
  },
};

const PROBLEM_RESPONSES: Record<string, string> = {
  "400": "Malformed request",
  "401": "Missing or invalid credential",
  "403": "Valid credential, insufficient tier or scope",
  "404": "Not found",
  "408": "The request body did not arrive in time",
  "409": "Conflict (or the Idempotency-Key is in use)",
  "413": "Request body too large",
  "415": "Unsupported media type",
  "422": "Invalid fields (see errors[].pointer)",
  "429": "Rate limit exceeded",
  "431": "Request headers too large",
  "500": "Internal error (quote the requestId)",
  "503": "Database unavailable, or (login, signup) too many password checks waiting; retry",
};

/** `/a/:id/b` → `/a/{id}/b`, and the names of its path parameters. */
export function openApiPath(pattern: string): { path: string; params: string[] } {
  const params: string[] = [];
  const path = pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path, params };
}

// Which problem answers a route can give, from what it declares.
function problemStatuses(route: Route, hasParams: boolean): string[] {
  if (route.auth.length === 0 && route.method === "GET" && !hasParams) return ["500", "503"];
  const out = ["400"];
  if (route.auth.length) out.push("401", "403");
  if (hasParams) out.push("404");
  const body = route.method !== "GET" && route.method !== "DELETE";
  if (body) out.push("408");
  if (route.idempotent) out.push("409");
  if (body) out.push("413", "415");
  out.push("422");
  if (route.limit) out.push("429");
  out.push("431", "500", "503");
  return out;
}

function operationOf(route: Route, params: string[]): Record<string, unknown> {
  const parameters: Record<string, unknown>[] = params.map((name) => ({
    name,
    in: "path",
    required: true,
    schema: { type: "string" },
  }));
  for (const q of route.query ?? []) {
    parameters.push({
      name: q.name,
      in: "query",
      required: q.required ?? false,
      description: q.description,
      schema: q.schema,
    });
  }
  if (route.idempotent) {
    parameters.push({ $ref: "#/components/parameters/IdempotencyKey" });
  }
  const responses: Record<string, unknown> = {};
  for (const [status, { description, schema }] of Object.entries(route.responses ?? {})) {
    responses[status] = schema
      ? { description, content: { "application/json": { schema } } }
      : { description };
  }
  if (!route.responses) responses["2XX"] = { description: "Success" };
  for (const status of problemStatuses(route, params.length > 0)) {
    responses[status] = { $ref: `#/components/responses/Problem${status}` };
  }
  const op: Record<string, unknown> = {
    operationId: `${route.method.toLowerCase()}${
      route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c) => c ? c.toUpperCase() : "")
    }`,
    summary: route.summary,
    security: route.auth.map((kind) => ({ [kind]: [] })),
    responses,
    "x-credential-kinds": route.auth,
  };
  if (parameters.length) op.parameters = parameters;
  if (route.body) {
    op.requestBody = { required: true, content: { "application/json": { schema: route.body } } };
  }
  if (route.tier) op["x-required-tier"] = route.tier;
  if (route.scope) op["x-required-scope"] = route.scope;
  if (route.limit) op["x-rate-limit-class"] = route.limit;
  if (route.idempotent) op["x-idempotent"] = true;
  return op;
}

function components(): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, description] of Object.entries(PROBLEM_RESPONSES)) {
    responses[`Problem${status}`] = {
      description,
      content: {
        "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } },
      },
    };
  }
  return {
    securitySchemes: SECURITY_SCHEMES,
    parameters: {
      IdempotencyKey: {
        name: "Idempotency-Key",
        in: "header",
        required: false,
        description: "1–255 visible ASCII; a retry with the same key replays the first answer",
        schema: { type: "string", minLength: 1, maxLength: 255 },
      },
    },
    responses,
    schemas: {
      Problem: {
        type: "object",
        description: "RFC 9457 problem details",
        required: ["type", "title", "status", "detail", "instance", "requestId"],
        properties: {
          type: { type: "string", format: "uri" },
          title: { type: "string" },
          status: { type: "integer" },
          detail: { type: "string" },
          instance: { type: "string" },
          requestId: { type: "string" },
          errors: {
            type: "array",
            items: {
              type: "object",
              required: ["pointer", "detail"],
              properties: { pointer: { type: "string" }, detail: { type: "string" } },
            },
          },
        },
      },
    },
  };
}

/** The OpenAPI 3.1 document describing `routes`. Pure. */
export function buildOpenApi(routes: readonly Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const { path, params } = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operationOf(route, params);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "NBA Prop Lab API",
      version,
      description:
        "Picks and scores (data API), self-service credentials and the ops control plane.",
    },
    servers: [{ url: "/" }],
    paths,
    components: components(),
  };
}

function openapi(ctx: Ctx): Response {
  return cachedJson(ctx.req, buildOpenApi(ctx.deps.routes ?? [], ctx.deps.version));
}

/** Routes of this file. */
export const openapiRoutes: Route[] = [
  {
    method: "GET",
    path: "/api/v1/openapi.json",
    auth: [],
    summary: "This OpenAPI 3.1 description",
    responses: {
      304: NOT_MODIFIED,
      200: { description: "This document", schema: { type: "object" } },
    },
    handler: openapi,
  },
];
