/**
 * JSON Schemas of the answers, for openapi.json. Each test server checks every 2xx answer
 * against its route's (tests/support/server.ts), so they describe what the routes send.
 */
import { SCOPES, TIERS } from "../lib/policy.ts";
import { JOB_TYPES, MARKETS } from "../lib/commands.ts";
import { JOB_STATES } from "../db/jobs.ts";
import type { JsonSchema } from "./context.ts";

const uuid = { type: "string", format: "uuid" };
const time = { type: "string", format: "date-time" };
const maybeTime = { type: ["string", "null"], format: "date-time" };
/** A calendar day, YYYY-MM-DD. */
export const DATE = { type: "string", format: "date" };
const date = DATE;
const string = { type: "string" };
const maybeString = { type: ["string", "null"] };
const integer = { type: "integer" };
const maybeInteger = { type: ["integer", "null"] };
const number = { type: "number" };
const boolean = { type: "boolean" };
const any = {};

/** An object with exactly these members, all required unless `optional` names them. */
function object(properties: Record<string, JsonSchema>, optional: string[] = []): JsonSchema {
  const required = Object.keys(properties).filter((k) => !optional.includes(k));
  return { type: "object", required, properties, additionalProperties: false };
}

const arrayOf = (items: JsonSchema) => ({ type: "array", items });

/** A page of a listing: `items` and the cursor of the next page (null on the last). */
export function page(item: JsonSchema, extra: Record<string, JsonSchema> = {}): JsonSchema {
  return object({ ...extra, items: arrayOf(item), nextCursor: maybeString });
}

/** A user as an admin sees them. */
export const USER = object({
  id: uuid,
  email: string,
  tier: { enum: TIERS },
  disabled: boolean,
  createdAt: time,
  updatedAt: time,
});

/** The new account (POST /auth/signup). */
export const SIGNED_UP = object({
  id: uuid,
  email: string,
  tier: { enum: TIERS },
  createdAt: time,
});

/** The caller (GET /me). */
export const ME = object({
  id: uuid,
  email: string,
  tier: { enum: TIERS },
  disabled: boolean,
  createdAt: time,
  scopes: arrayOf({ enum: SCOPES }),
});

/** An access token (login, refresh). */
export const TOKENS = object({
  accessToken: string,
  tokenType: { enum: ["Bearer"] },
  expiresIn: integer,
});

const keyMembers = {
  id: uuid,
  name: string,
  prefix: string,
  createdAt: time,
  lastUsedAt: maybeTime,
  expiresAt: maybeTime,
};
/** An API key as listed. */
export const API_KEY = object(keyMembers);
/** A new API key, with its raw value (shown this once). */
export const NEW_API_KEY = object({ ...keyMembers, rawKey: string });

const tokenMembers = { ...keyMembers, scopes: arrayOf({ enum: SCOPES }), createdBy: string };
/** An ops token as listed. */
export const OPS_TOKEN = object(tokenMembers);
/** A new ops token, with its raw value (shown this once). */
export const NEW_OPS_TOKEN = object({ ...tokenMembers, token: string });

/** A job of the queue. */
export const JOB = object({
  id: uuid,
  type: { enum: JOB_TYPES },
  params: { type: "object" },
  state: { enum: JOB_STATES },
  attempts: integer,
  createdAt: time,
  startedAt: maybeTime,
  finishedAt: maybeTime,
  error: maybeString,
  result: any,
});

/** One execution of a job, with its steps. */
export const PIPELINE_RUN = object({
  id: uuid,
  jobId: uuid,
  type: { enum: JOB_TYPES },
  attempt: integer,
  state: { enum: ["running", "succeeded", "failed", "cancelled"] },
  steps: arrayOf(object({
    name: string,
    startedAt: time,
    finishedAt: time,
    durationMs: number,
    rows: integer,
  })),
  startedAt: time,
  finishedAt: maybeTime,
  error: maybeString,
});

/** A pick, with its outcome once settled. */
export const PICK = object({
  id: uuid,
  date,
  player: string,
  team: maybeString,
  opponent: maybeString,
  market: { enum: MARKETS },
  line: number,
  side: { enum: ["over", "under"] },
  odds: integer,
  outcome: { enum: ["win", "loss", "push", "void", null] },
  actual: { type: ["number", "null"] },
});

const tally = {
  wins: integer,
  losses: integer,
  pushes: integer,
  voids: integer,
  units: number,
  roi: number,
};

/** A scored day: the record, units and ROI, overall and by market. */
export const SCORE = object({
  date,
  ...tally,
  byMarket: { type: "object", additionalProperties: object({ picks: integer, ...tally }) },
  computedAt: time,
});

/** GET /api/v1/ops/health. */
export const HEALTH = object({
  status: { enum: ["ok"] },
  version: string,
  instanceId: uuid,
  uptimeSeconds: integer,
  database: object({
    status: { enum: ["up"] },
    kind: { enum: ["postgres", "pglite"] },
    latencyMs: number,
  }),
  queue: object({ depth: integer, running: integer }),
  worker: object({
    state: string,
    here: { type: ["object", "null"] },
    liveWorkers: integer,
  }),
});

/** GET /api/v1/ops/services. */
export const SERVICES = object({
  items: arrayOf(object({
    id: uuid,
    role: string,
    version: string,
    hostname: string,
    pid: integer,
    startedAt: time,
    lastHeartbeatAt: time,
    stale: boolean,
    self: boolean,
  })),
  staleAfterSeconds: number,
});

/** A 5xx answer or a failed job (GET /api/v1/ops/errors). */
export const ERROR_ENTRY = object({
  kind: { enum: ["request", "job"] },
  id: string,
  at: time,
  requestId: string,
  method: string,
  route: maybeString,
  status: integer,
  jobId: uuid,
  jobType: { enum: JOB_TYPES },
  attempts: integer,
  error: maybeString,
}, ["requestId", "method", "route", "status", "jobId", "jobType", "attempts", "error"]);

/** GET /api/v1/ops/freshness. */
export const FRESHNESS = object({
  items: arrayOf(object({
    dataset: string,
    updatedAt: maybeTime,
    ageMinutes: maybeInteger,
    maxAgeMinutes: number,
    stale: boolean,
    rowCount: maybeInteger,
  })),
});

/** A setting with its value now. */
export const SETTING = object({
  key: string,
  value: any,
  default: any,
  description: string,
  updatedAt: maybeTime,
  updatedBy: maybeString,
});

/** A change of a setting. */
export const SETTING_CHANGE = object({
  id: string,
  key: string,
  oldValue: any,
  newValue: any,
  changedBy: string,
  changedAt: time,
});

/** A cached read's answer to If-None-Match with its current ETag. */
export const NOT_MODIFIED = { description: "Not modified: If-None-Match holds the current ETag" };

/** GET /healthz. */
export const LIVE = object({ status: { enum: ["ok"] }, version: string });
/** GET /readyz. */
export const READY = object({
  status: { enum: ["ready"] },
  database: { enum: ["postgres", "pglite"] },
});
