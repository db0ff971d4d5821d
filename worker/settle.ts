/** `settle` {date}: grades each pick of the day against the results: win, loss, push, void. */
import { findPicksForDay, findResultsForDay, updatePickOutcomes } from "../db/picks.ts";
import { playerMarketKey } from "../lib/commands.ts";
import { gradePick, type Outcome } from "../lib/scoring.ts";
import { type JobContext, JobError } from "./job.ts";

/** Runs a settle job; the result counts the day's outcomes. */
export async function settle(ctx: JobContext): Promise<unknown> {
  const date = String(ctx.job.params.date);
  const { picks, results } = await ctx.step("load", async () => {
    const picks = await findPicksForDay(ctx.db, date);
    const results = await findResultsForDay(ctx.db, date);
    return { rows: picks.length + results.length, value: { picks, results } };
  });
  if (picks.length && !results.length) {
    throw new JobError(`No results are ingested for ${date}; ingest them before settling`);
  }
  const grades = await ctx.step("grade", () => {
    const actual = new Map(results.map((r) => [playerMarketKey(r.player, r.market), r.value]));
    const value = picks.map((p) => {
      const a = actual.get(playerMarketKey(p.player, p.market)) ?? null;
      return { id: p.id, outcome: gradePick(p, a), actual: a };
    });
    return Promise.resolve({ rows: value.length, value });
  });
  await ctx.step("store", async () => ({
    rows: await ctx.transaction((tx) => updatePickOutcomes(tx, grades)),
    value: null,
  }));
  const counts: Record<Outcome, number> = { win: 0, loss: 0, push: 0, void: 0 };
  for (const g of grades) counts[g.outcome]++;
  return { date, picks: grades.length, ...counts };
}
