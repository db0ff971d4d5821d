/**
 * `ingest` {date, picks?, results?}: loads a day's picks and results, inline from the params or
 * else from `<INGEST_DIR>/<date>/picks.json` and `results.json`, replacing what the day had.
 */
import {
  deleteScoreForDay,
  replacePicksForDay,
  replaceResultsForDay,
  upsertDatasetFreshness,
} from "../db/picks.ts";
import {
  isIsoDate,
  type PickInput,
  type ResultInput,
  validatePicks,
  validateResults,
} from "../lib/commands.ts";
import type { FieldError } from "../lib/problem.ts";
import { type JobContext, JobError } from "./job.ts";

type Dataset = "picks" | "results";

/** Reads `<dir>/<date>/<dataset>.json`; undefined when the file does not exist. */
async function readDatasetFile(dir: string, date: string, dataset: Dataset): Promise<unknown> {
  const path = `${dir}/${date}/${dataset}.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new JobError(`Cannot read ${dataset}.json for ${date}: ${(err as Error).name}`, true);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new JobError(`${dataset}.json for ${date} is not valid JSON`);
  }
}

function firstErrors(errors: FieldError[]): string {
  const shown = errors.slice(0, 5).map((e) => `${e.pointer}: ${e.detail}`).join("; ");
  return errors.length > 5 ? `${shown}; and ${errors.length - 5} more` : shown;
}

interface Loaded {
  picks?: PickInput[];
  results?: ResultInput[];
  sources: Record<Dataset, "params" | "file" | "none">;
}

async function load(ctx: JobContext, date: string): Promise<Loaded> {
  const p = ctx.job.params;
  const loaded: Loaded = { sources: { picks: "none", results: "none" } };
  const errors: FieldError[] = [];
  for (const dataset of ["picks", "results"] as const) {
    let raw = p[dataset];
    if (raw !== undefined) loaded.sources[dataset] = "params";
    else {
      raw = await readDatasetFile(ctx.config.ingestDir, date, dataset);
      if (raw === undefined) continue;
      loaded.sources[dataset] = "file";
    }
    const at = loaded.sources[dataset] === "params" ? `/params/${dataset}` : `${dataset}.json`;
    if (dataset === "picks") loaded.picks = validatePicks(raw, at, errors);
    else loaded.results = validateResults(raw, at, errors);
  }
  if (errors.length) throw new JobError(`Invalid input for ${date}: ${firstErrors(errors)}`);
  if (!loaded.picks && !loaded.results) {
    throw new JobError(
      `Nothing to ingest for ${date}: give picks or results in the params, or put picks.json ` +
        `or results.json in INGEST_DIR/${date}/`,
    );
  }
  return loaded;
}

/** Runs an ingest job; the result says how many rows of each dataset were stored and from where. */
export async function ingest(ctx: JobContext): Promise<unknown> {
  const date = ctx.job.params.date;
  if (!isIsoDate(date)) throw new JobError("params.date must be a calendar date YYYY-MM-DD");
  const data = await ctx.step("read", async () => {
    const value = await load(ctx, date);
    return { rows: (value.picks?.length ?? 0) + (value.results?.length ?? 0), value };
  });
  // One transaction for the whole day: a failure leaves the previous day intact.
  const stored = await ctx.step("store", async () => {
    const value = await ctx.transaction(async (tx) => {
      const picks = data.picks ? await replacePicksForDay(tx, date, data.picks) : null;
      const results = data.results ? await replaceResultsForDay(tx, date, data.results) : null;
      if (picks !== null) await upsertDatasetFreshness(tx, "picks", picks);
      if (results !== null) await upsertDatasetFreshness(tx, "results", results);
      await deleteScoreForDay(tx, date);
      return { picks, results };
    });
    return { rows: (value.picks ?? 0) + (value.results ?? 0), value };
  });
  return { date, ...stored, sources: data.sources };
}
