/** Writes and reads of the pipeline's data: picks, results, scores, dataset freshness. */
import type { Queryable } from "./client.ts";
import type { PickInput, ResultInput } from "../lib/commands.ts";
import type { DayScore, Outcome, Side } from "../lib/scoring.ts";

/** A stored pick as the pipeline reads it. */
export interface StoredPick {
  id: string;
  player: string;
  market: string;
  line: number;
  side: Side;
  odds: number;
  outcome: Outcome | null;
}

/** Replaces a day's picks (their grades go with them); returns how many were stored. */
export async function replacePicksForDay(
  q: Queryable,
  date: string,
  picks: readonly PickInput[],
): Promise<number> {
  await q.query("delete from picks where game_date = $1::date", [date]);
  if (!picks.length) return 0;
  const rows = picks.map((p) => ({ ...p, id: crypto.randomUUID() }));
  const inserted = await q.query(
    `insert into picks (id, game_date, player, team, opponent, market, line, side, odds)
     select x.id, $1::date, x.player, x.team, x.opponent, x.market, x.line, x.side, x.odds
       from jsonb_to_recordset($2::text::jsonb) as x(id uuid, player text, team text, opponent text,
            market text, line numeric, side text, odds int)
     returning id`,
    [date, JSON.stringify(rows)],
  );
  return inserted.length;
}

/** Replaces a day's box-score results; returns how many were stored. */
export async function replaceResultsForDay(
  q: Queryable,
  date: string,
  results: readonly ResultInput[],
): Promise<number> {
  await q.query("delete from results where game_date = $1::date", [date]);
  if (!results.length) return 0;
  const inserted = await q.query(
    `insert into results (game_date, player, market, value)
     select $1::date, x.player, x.market, x.value
       from jsonb_to_recordset($2::text::jsonb) as x(player text, market text, value numeric)
     returning player`,
    [date, JSON.stringify(results)],
  );
  return inserted.length;
}

/** Drops a day's score (its inputs changed; score-day must run again). */
export async function deleteScoreForDay(q: Queryable, date: string): Promise<void> {
  await q.query("delete from scores where game_date = $1::date", [date]);
}

/** Records that `dataset` was updated now with `rowCount` rows. */
export async function upsertDatasetFreshness(
  q: Queryable,
  dataset: "picks" | "results",
  rowCount: number,
): Promise<void> {
  await q.query(
    `insert into dataset_freshness (dataset, updated_at, row_count) values ($1, now(), $2)
     on conflict (dataset) do update set updated_at = now(), row_count = excluded.row_count`,
    [dataset, rowCount],
  );
}

/** A day's picks, in a stable order. */
export async function findPicksForDay(q: Queryable, date: string): Promise<StoredPick[]> {
  return await q.query<StoredPick>(
    `select id, player, market, line::float8 as line, side, odds, outcome
       from picks where game_date = $1::date order by id`,
    [date],
  );
}

/** A day's results. */
export async function findResultsForDay(q: Queryable, date: string): Promise<ResultInput[]> {
  return await q.query<ResultInput>(
    "select player, market, value::float8 as value from results where game_date = $1::date",
    [date],
  );
}

/** Stores each pick's grade and actual value in one statement; returns rows updated. */
export async function updatePickOutcomes(
  q: Queryable,
  grades: readonly { id: string; outcome: Outcome; actual: number | null }[],
): Promise<number> {
  if (!grades.length) return 0;
  const rows = await q.query(
    `update picks p set outcome = x.outcome, actual = x.actual
       from jsonb_to_recordset($1::text::jsonb) as x(id uuid, outcome text, actual numeric)
      where p.id = x.id returning p.id`,
    [JSON.stringify(grades)],
  );
  return rows.length;
}

/** Writes (or rewrites) a day's score. */
export async function upsertScore(q: Queryable, date: string, score: DayScore): Promise<void> {
  const o = score.overall;
  await q.query(
    `insert into scores (game_date, wins, losses, pushes, voids, units, roi, by_market)
     values ($1::date, $2, $3, $4, $5, $6, $7, $8::text::jsonb)
     on conflict (game_date) do update set wins = excluded.wins, losses = excluded.losses,
       pushes = excluded.pushes, voids = excluded.voids, units = excluded.units,
       roi = excluded.roi, by_market = excluded.by_market, computed_at = now()`,
    [date, o.wins, o.losses, o.pushes, o.voids, o.units, o.roi, JSON.stringify(score.byMarket)],
  );
}
