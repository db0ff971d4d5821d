/** Pure grading and scoring of picks: American odds, outcomes, the day's record and ROI. */

/** How a pick ended. */
export type Outcome = "win" | "loss" | "push" | "void";

/** Which side of the line a pick took. */
export type Side = "over" | "under";

/** What grading and scoring need of a pick. */
export interface GradablePick {
  market: string;
  line: number;
  side: Side;
  odds: number;
}

/** A day's (or one market's) record on 1-unit stakes. */
export interface Tally {
  picks: number;
  wins: number;
  losses: number;
  pushes: number;
  voids: number;
  /** Net units won, rounded to 4 decimals. */
  units: number;
  /** units / (wins + losses), rounded to 4 decimals; 0 when nothing was decided. */
  roi: number;
}

/** The scored day: overall and per market. */
export interface DayScore {
  overall: Tally;
  byMarket: Record<string, Tally>;
}

/** Rounds to 4 decimals (units and ROI are shown to a hundredth of a percent of a unit). */
export function round4(x: number): number {
  const r = Math.round(x * 10_000) / 10_000;
  return Object.is(r, -0) ? 0 : r;
}

/** Profit of a winning 1-unit stake at American `odds`: +150 pays 1.5, -110 pays 100/110. */
export function profitPerUnit(odds: number): number {
  if (!Number.isInteger(odds) || (odds > -100 && odds < 100)) {
    throw new RangeError(`American odds must be an integer <= -100 or >= 100, got ${odds}`);
  }
  return odds > 0 ? odds / 100 : 100 / -odds;
}

/** Grades a pick against the player's actual value; `null` (no result) is a void. */
export function gradePick(
  pick: Pick<GradablePick, "line" | "side">,
  actual: number | null,
): Outcome {
  if (actual === null) return "void";
  if (actual === pick.line) return "push";
  const over = actual > pick.line;
  return over === (pick.side === "over") ? "win" : "loss";
}

/** Units a 1-unit stake returns net: a win pays at the odds, a loss costs the stake. */
export function unitsFor(outcome: Outcome, odds: number): number {
  if (outcome === "win") return profitPerUnit(odds);
  if (outcome === "loss") return -1;
  return 0; // a push or a void returns the stake
}

type Acc = Omit<Tally, "roi">;

const COUNTER: Record<Outcome, "wins" | "losses" | "pushes" | "voids"> = {
  win: "wins",
  loss: "losses",
  push: "pushes",
  void: "voids",
};

function emptyAcc(): Acc {
  return { picks: 0, wins: 0, losses: 0, pushes: 0, voids: 0, units: 0 };
}

function add(acc: Acc, outcome: Outcome, odds: number): void {
  acc.picks++;
  acc[COUNTER[outcome]]++;
  acc.units += unitsFor(outcome, odds);
}

function finish(acc: Acc): Tally {
  const staked = acc.wins + acc.losses;
  return { ...acc, units: round4(acc.units), roi: staked ? round4(acc.units / staked) : 0 };
}

/** Scores graded picks: the record, units and ROI overall and by market (markets sorted). */
export function scoreDay(
  picks: readonly { market: string; odds: number; outcome: Outcome }[],
): DayScore {
  const overall = emptyAcc();
  const markets = new Map<string, Acc>();
  for (const p of picks) {
    add(overall, p.outcome, p.odds);
    const m = markets.get(p.market) ?? emptyAcc();
    add(m, p.outcome, p.odds);
    markets.set(p.market, m);
  }
  const byMarket: Record<string, Tally> = {};
  for (const name of [...markets.keys()].sort()) byMarket[name] = finish(markets.get(name)!);
  return { overall: finish(overall), byMarket };
}
