/** Pure validation of ops commands `{type, params}` and of the pipeline's input rows. */
import { ApiError, type FieldError } from "./problem.ts";
import type { Side } from "./scoring.ts";

/** The job types the pipeline runs. */
export const JOB_TYPES = ["ingest", "settle", "score-day"] as const;
export type JobType = typeof JOB_TYPES[number];

/** Prop markets a pick may be on (pra = points + rebounds + assists, pr/pa/ra the pairs). */
export const MARKETS = [
  "points",
  "rebounds",
  "assists",
  "threes",
  "steals",
  "blocks",
  "turnovers",
  "pra",
  "pr",
  "pa",
  "ra",
] as const;

/** Longest American odds accepted (+100000 is a 1000-to-1 shot; 2^63 is an attack). */
export const MAX_ODDS = 100_000;

/** The most picks or results one ingest accepts. */
export const MAX_ROWS = 5000;

/** A validated pick as ingested. */
export interface PickInput {
  player: string;
  team: string | null;
  opponent: string | null;
  market: string;
  line: number;
  side: Side;
  odds: number;
}

/** A validated box-score result. */
export interface ResultInput {
  player: string;
  market: string;
  value: number;
}

/** Params of each job type after validation. */
export interface CommandParams {
  date: string;
  picks?: PickInput[];
  results?: ResultInput[];
}

/** A validated command. */
export interface Command {
  type: JobType;
  params: CommandParams;
}

const ALLOWED_PARAMS: Record<JobType, readonly string[]> = {
  "ingest": ["date", "picks", "results"],
  "settle": ["date"],
  "score-day": ["date"],
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** True for a real calendar date written YYYY-MM-DD. */
export function isIsoDate(v: unknown): v is string {
  if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return false;
  const d = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === v;
}

/** The key results are matched on: case-insensitive player, exact market. */
export function playerMarketKey(player: string, market: string): string {
  return `${player.trim().replace(/\s+/g, " ").toLowerCase()}|${market}`;
}

function nameField(v: unknown, pointer: string, errors: FieldError[], required: boolean) {
  if (v === undefined || v === null) {
    if (required) errors.push({ pointer, detail: "is required" });
    return null;
  }
  if (typeof v !== "string" || v.trim() === "" || v.length > 100) {
    errors.push({ pointer, detail: "must be a non-empty string of at most 100 characters" });
    return null;
  }
  return v.trim();
}

function marketField(v: unknown, pointer: string, errors: FieldError[]): string | null {
  if (typeof v === "string" && (MARKETS as readonly string[]).includes(v)) return v;
  errors.push({ pointer, detail: `must be one of ${MARKETS.join(", ")}` });
  return null;
}

function numberField(v: unknown, pointer: string, errors: FieldError[]): number | null {
  if (typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1000) return v;
  errors.push({ pointer, detail: "must be a number from 0 to 1000" });
  return null;
}

function rowsOf(v: unknown, pointer: string, errors: FieldError[]): unknown[] | null {
  if (!Array.isArray(v)) {
    errors.push({ pointer, detail: "must be an array" });
    return null;
  }
  if (v.length > MAX_ROWS) {
    errors.push({ pointer, detail: `must hold at most ${MAX_ROWS} rows` });
    return null;
  }
  return v;
}

const PICK_FIELDS = ["player", "team", "opponent", "market", "line", "side", "odds"];

const NAME = { type: "string", minLength: 1, maxLength: 100 };
const AMOUNT = { type: "number", minimum: 0, maximum: 1000 };

/** `{type, params}` as openapi.json documents it (validateCommand checks it). */
export const COMMAND_SCHEMA = {
  type: "object",
  required: ["type", "params"],
  properties: {
    type: { enum: JOB_TYPES },
    params: {
      type: "object",
      description: "date for every type; picks and results for ingest only",
      required: ["date"],
      properties: {
        date: { type: "string", format: "date" },
        picks: {
          type: "array",
          maxItems: MAX_ROWS,
          items: {
            type: "object",
            required: ["player", "market", "line", "side", "odds"],
            properties: {
              player: NAME,
              team: { ...NAME, type: ["string", "null"] },
              opponent: { ...NAME, type: ["string", "null"] },
              market: { enum: MARKETS },
              line: AMOUNT,
              side: { enum: ["over", "under"] },
              odds: {
                type: "integer",
                minimum: -MAX_ODDS,
                maximum: MAX_ODDS,
                description: "American odds: -100 or below, or +100 or above",
              },
            },
            additionalProperties: false,
          },
        },
        results: {
          type: "array",
          maxItems: MAX_ROWS,
          items: {
            type: "object",
            required: ["player", "market", "value"],
            properties: { player: NAME, market: { enum: MARKETS }, value: AMOUNT },
            additionalProperties: false,
          },
        },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;
const RESULT_FIELDS = ["player", "market", "value"];

function unknownMembers(
  raw: Record<string, unknown>,
  known: readonly string[],
  at: string,
  errors: FieldError[],
): void {
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) errors.push({ pointer: `${at}/${key}`, detail: "is not a field" });
  }
}

function pickAt(raw: unknown, at: string, errors: FieldError[]): PickInput | null {
  if (!isObject(raw)) {
    errors.push({ pointer: at, detail: "must be an object" });
    return null;
  }
  const before = errors.length;
  unknownMembers(raw, PICK_FIELDS, at, errors);
  const player = nameField(raw.player, `${at}/player`, errors, true);
  const team = nameField(raw.team, `${at}/team`, errors, false);
  const opponent = nameField(raw.opponent, `${at}/opponent`, errors, false);
  const market = marketField(raw.market, `${at}/market`, errors);
  const line = numberField(raw.line, `${at}/line`, errors);
  const side = raw.side === "over" || raw.side === "under" ? raw.side : null;
  if (side === null) errors.push({ pointer: `${at}/side`, detail: "must be over or under" });
  const odds = raw.odds;
  const oddsOk = typeof odds === "number" && Number.isInteger(odds) &&
    Math.abs(odds) >= 100 && Math.abs(odds) <= MAX_ODDS;
  if (!oddsOk) {
    errors.push({
      pointer: `${at}/odds`,
      detail: `must be whole American odds from -${MAX_ODDS} to -100 or +100 to +${MAX_ODDS}`,
    });
  }
  if (errors.length > before) return null;
  return {
    player: player!,
    team,
    opponent,
    market: market!,
    line: line!,
    side: side!,
    odds: odds as number,
  };
}

/** Validates picks; `pointer` is where the array sits in the caller's document. */
export function validatePicks(v: unknown, pointer: string, errors: FieldError[]): PickInput[] {
  const rows = rowsOf(v, pointer, errors) ?? [];
  const out: PickInput[] = [];
  rows.forEach((raw, i) => {
    const pick = pickAt(raw, `${pointer}/${i}`, errors);
    if (pick) out.push(pick);
  });
  return out;
}

/** Validates results; a player and market may appear once (compared case-insensitively). */
export function validateResults(v: unknown, pointer: string, errors: FieldError[]): ResultInput[] {
  const rows = rowsOf(v, pointer, errors) ?? [];
  const out: ResultInput[] = [];
  const seen = new Set<string>();
  rows.forEach((raw, i) => {
    const at = `${pointer}/${i}`;
    if (!isObject(raw)) return void errors.push({ pointer: at, detail: "must be an object" });
    const before = errors.length;
    unknownMembers(raw, RESULT_FIELDS, at, errors);
    const player = nameField(raw.player, `${at}/player`, errors, true);
    const market = marketField(raw.market, `${at}/market`, errors);
    const value = numberField(raw.value, `${at}/value`, errors);
    if (errors.length > before) return;
    const key = playerMarketKey(player!, market!);
    if (seen.has(key)) {
      return void errors.push({ pointer: at, detail: "repeats a player and market given before" });
    }
    seen.add(key);
    out.push({ player: player!, market: market!, value: value! });
  });
  return out;
}

/** Validates `{type, params}`; throws a 422 listing every invalid field by JSON pointer. */
export function validateCommand(body: unknown): Command {
  if (!isObject(body)) {
    throw new ApiError("validation-failed", "The body must be an object {type, params}", {
      errors: [{ pointer: "", detail: "must be an object" }],
    });
  }
  const errors: FieldError[] = [];
  for (const key of Object.keys(body)) {
    if (key !== "type" && key !== "params") {
      errors.push({ pointer: `/${key}`, detail: "is not a field of a command" });
    }
  }
  const type = body.type;
  if (typeof type !== "string" || !(JOB_TYPES as readonly string[]).includes(type)) {
    errors.push({ pointer: "/type", detail: `must be one of ${JOB_TYPES.join(", ")}` });
    throw new ApiError("validation-failed", "Unknown command type", { errors });
  }
  const jobType = type as JobType;
  const raw = body.params;
  if (!isObject(raw)) {
    errors.push({ pointer: "/params", detail: "must be an object" });
    throw new ApiError("validation-failed", "The params are invalid", { errors });
  }
  for (const key of Object.keys(raw)) {
    if (!ALLOWED_PARAMS[jobType].includes(key)) {
      errors.push({ pointer: `/params/${key}`, detail: `is not a parameter of ${jobType}` });
    }
  }
  if (!isIsoDate(raw.date)) {
    errors.push({ pointer: "/params/date", detail: "must be a calendar date YYYY-MM-DD" });
  }
  const params: CommandParams = { date: raw.date as string };
  if (jobType === "ingest" && raw.picks !== undefined) {
    params.picks = validatePicks(raw.picks, "/params/picks", errors);
  }
  if (jobType === "ingest" && raw.results !== undefined) {
    params.results = validateResults(raw.results, "/params/results", errors);
  }
  if (errors.length) {
    throw new ApiError("validation-failed", `The params of ${jobType} are invalid`, { errors });
  }
  return { type: jobType, params };
}
