/** Reads of the pipeline's data (picks, scores, dataset freshness) and the job counts health needs. */
import type { Tally } from "../lib/scoring.ts";
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";

/** A pick as the data API serves it; numeric columns converted to numbers. */
export interface Pick {
  id: string;
  date: string;
  player: string;
  team: string | null;
  opponent: string | null;
  market: string;
  line: number;
  side: "over" | "under";
  odds: number;
  outcome: "win" | "loss" | "push" | "void" | null;
  actual: number | null;
}

/** A pick and the creation time its list is ordered by. */
export interface PickRow {
  pick: Pick;
  createdAt: Date;
}

/** A scored day as /data/scores serves it. */
export interface Score extends Omit<Tally, "picks"> {
  date: string;
  byMarket: unknown;
  computedAt: string;
}

const PICK_COLUMNS = `id, to_char(game_date, 'YYYY-MM-DD') as date, player, team, opponent, market,
  line::text as line, side, odds, outcome, actual::text as actual,
  date_trunc('milliseconds', created_at) as created_at`;

function toPickRow(r: Record<string, unknown>): PickRow {
  return {
    pick: {
      id: String(r.id),
      date: String(r.date),
      player: String(r.player),
      team: r.team === null ? null : String(r.team),
      opponent: r.opponent === null ? null : String(r.opponent),
      market: String(r.market),
      line: Number(r.line),
      side: r.side as Pick["side"],
      odds: Number(r.odds),
      outcome: (r.outcome ?? null) as Pick["outcome"],
      actual: r.actual === null ? null : Number(r.actual),
    },
    createdAt: new Date(r.created_at as Date),
  };
}

/**
 * One page of a day's picks, newest first by (created_at, id), strictly after `cursor`.
 * Times are compared at millisecond precision, the precision of the cursor.
 */
export async function findPicksByDate(
  q: Queryable,
  date: string,
  cursor: Cursor | null,
  limit: number,
): Promise<PickRow[]> {
  const rows = await q.query<Record<string, unknown>>(
    `select ${PICK_COLUMNS} from picks
      where game_date = $1::date
        and ($2::timestamptz is null
             or (date_trunc('milliseconds', created_at), id) < ($2::timestamptz, $3::uuid))
      order by date_trunc('milliseconds', created_at) desc, id desc
      limit $4`,
    [date, cursor?.at ?? null, cursor?.id ?? null, limit],
  );
  return rows.map(toPickRow);
}

/** The version of a dataset's rows (migration 0009): it moves on with every change. */
export async function findDataVersion(q: Queryable, dataset: string): Promise<number> {
  const rows = await q.query<{ version: number }>(
    "select version::float8 as version from data_versions where dataset = $1",
    [dataset],
  );
  return rows.length ? Number(rows[0].version) : -1;
}

/** One pick by id, or null. `id` must already be a UUID. */
export async function findPickById(q: Queryable, id: string): Promise<Pick | null> {
  const rows = await q.query<Record<string, unknown>>(
    `select ${PICK_COLUMNS} from picks where id = $1::uuid`,
    [id],
  );
  return rows.length ? toPickRow(rows[0]).pick : null;
}

/** The scored day, or null when it has not been scored. */
export async function findScoreByDate(q: Queryable, date: string): Promise<Score | null> {
  const rows = await q.query<Record<string, unknown>>(
    `select to_char(game_date, 'YYYY-MM-DD') as date, wins, losses, pushes, voids,
            units::text as units, roi::text as roi, by_market, computed_at
       from scores where game_date = $1::date`,
    [date],
  );
  if (!rows.length) return null;
  const r = rows[0];
  return {
    date: String(r.date),
    wins: Number(r.wins),
    losses: Number(r.losses),
    pushes: Number(r.pushes),
    voids: Number(r.voids),
    units: Number(r.units),
    roi: Number(r.roi),
    byMarket: r.by_market,
    computedAt: new Date(r.computed_at as Date).toISOString(),
  };
}

/** When each dataset was last updated, by dataset name. */
export async function findDatasetFreshness(
  q: Queryable,
): Promise<Map<string, { updatedAt: Date; rowCount: number }>> {
  const rows = await q.query<{ dataset: string; updated_at: Date; row_count: number }>(
    "select dataset, updated_at, row_count::int as row_count from dataset_freshness",
  );
  return new Map(
    rows.map((
      r,
    ) => [r.dataset, { updatedAt: new Date(r.updated_at), rowCount: Number(r.row_count) }]),
  );
}

/** Jobs waiting and running, for /ops/health. */
export async function countJobsByState(
  q: Queryable,
): Promise<{ queued: number; running: number }> {
  const rows = await q.query<{ queued: number; running: number }>(
    `select count(*) filter (where state = 'queued')::int as queued,
            count(*) filter (where state = 'running')::int as running
       from jobs where state in ('queued', 'running')`,
  );
  return { queued: Number(rows[0].queued), running: Number(rows[0].running) };
}
