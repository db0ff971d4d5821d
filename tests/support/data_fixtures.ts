/** Fixture rows for the pipeline tables, written with plain SQL (the pipeline writes them for real). */
import type { Queryable } from "../../db/client.ts";

/** Inserts one pick; returns its id. */
export async function insertPickRow(
  q: Queryable,
  p: {
    date: string;
    player?: string;
    market?: string;
    line?: number;
    side?: "over" | "under";
    odds?: number;
    outcome?: string | null;
    actual?: number | null;
    createdAt?: Date;
    id?: string;
  },
): Promise<string> {
  const id = p.id ?? crypto.randomUUID();
  await q.query(
    `insert into picks (id, game_date, player, team, opponent, market, line, side, odds, outcome,
                        actual, created_at)
     values ($1, $2::date, $3, 'BOS', 'NYK', $4, $5, $6, $7, $8, $9, $10)`,
    [
      id,
      p.date,
      p.player ?? "Jayson Tatum",
      p.market ?? "points",
      p.line ?? 27.5,
      p.side ?? "over",
      p.odds ?? -110,
      p.outcome ?? null,
      p.actual ?? null,
      p.createdAt ?? new Date(),
    ],
  );
  return id;
}

/** A market's tally as the pipeline stores it (lib/scoring.ts). */
export const POINTS_TALLY = {
  picks: 4,
  wins: 2,
  losses: 1,
  pushes: 1,
  voids: 0,
  units: 0.8182,
  roi: 0.2727,
};

/** Inserts a scored day. */
export async function insertScoreRow(q: Queryable, date: string): Promise<void> {
  const t = POINTS_TALLY;
  await q.query(
    `insert into scores (game_date, wins, losses, pushes, voids, units, roi, by_market, computed_at)
     values ($1::date, $2, $3, $4, $5, $6, $7, $8::text::jsonb, '2026-03-02T08:00:00Z')`,
    [date, t.wins, t.losses, t.pushes, t.voids, t.units, t.roi, JSON.stringify({ points: t })],
  );
}

/** Records when a dataset was last loaded. */
export async function upsertFreshnessRow(q: Queryable, dataset: string, at: Date): Promise<void> {
  await q.query(
    `insert into dataset_freshness (dataset, updated_at, row_count) values ($1, $2, 10)
     on conflict (dataset) do update set updated_at = excluded.updated_at`,
    [dataset, at],
  );
}

/** Inserts a job in `state`; returns its id. */
export async function insertJobRow(
  q: Queryable,
  state: string,
  opts: { error?: string; finishedAt?: Date } = {},
): Promise<string> {
  const id = crypto.randomUUID();
  await q.query(
    `insert into jobs (id, type, params, state, attempts, created_by, error, finished_at)
     values ($1, 'settle', '{"date":"2026-03-01"}'::jsonb, $2, 3, 'ops:1', $3, $4)`,
    [id, state, opts.error ?? null, opts.finishedAt ?? null],
  );
  return id;
}
