/** `score-day` {date}: the day's record, units and ROI, overall and by market, into scores. */
import { findPicksForDay, upsertScore } from "../db/picks.ts";
import { scoreDay } from "../lib/scoring.ts";
import { type JobContext, JobError } from "./job.ts";

/** Runs a score-day job; the result is the score stored. */
export async function scoreDayJob(ctx: JobContext): Promise<unknown> {
  const date = String(ctx.job.params.date);
  const picks = await ctx.step("load", async () => {
    const value = await findPicksForDay(ctx.db, date);
    return { rows: value.length, value };
  });
  const unsettled = picks.filter((p) => p.outcome === null).length;
  if (unsettled) {
    throw new JobError(`${unsettled} picks of ${date} are not settled; run settle first`);
  }
  const score = await ctx.step("score", () => {
    const graded = picks.map((p) => ({ market: p.market, odds: p.odds, outcome: p.outcome! }));
    return Promise.resolve({ rows: graded.length, value: scoreDay(graded) });
  });
  await ctx.step("store", async () => {
    await ctx.transaction((tx) => upsertScore(tx, date, score));
    return { rows: 1, value: null };
  });
  return { date, ...score };
}
