/** Rate-limit windows: one atomic check per request, and pruning of expired rows. */
import type { Queryable } from "./client.ts";
import { type Policy, slotMs, SLOTS, type WindowState, windowState } from "../lib/ratelimit.ts";

/** One window a check charges: the policy and the row key (`<policy>:<subject>`). */
export interface WindowCharge {
  key: string;
  policy: Policy;
}

/** The outcome of one check: admitted or not, and every window's state after it. */
export interface ChargeResult {
  admitted: boolean;
  /** Every window after the charge; shared by the requests of one statement or lease. */
  states: WindowState[];
  /**
   * Units counted in each window's newest slot that this request does not see: those of the
   * requests admitted after it in the same statement, and units still held as a lease.
   */
  unseen?: number;
}

// ratelimit_charge (migration 0004) locks the rows in key order, checks every window and
// charges all or none, in one statement and one round trip.
const CHARGE_SQL = `select key, head::float8 as head, counts, admitted
  from ratelimit_charge($1::text[], $2::int[], $3::bigint[], $4::int[], $5::bigint)`;

/**
 * Charges one request at `nowMs` to every window of `charges`, or to none when any is full.
 * States come back in the order of `charges`.
 */
export async function chargeRateLimitWindows(
  q: Queryable,
  charges: readonly WindowCharge[],
  nowMs: number,
): Promise<ChargeResult> {
  const rows = await q.query<{ key: string; head: number; counts: number[]; admitted: boolean }>(
    CHARGE_SQL,
    [
      charges.map((c) => c.key),
      charges.map((c) => c.policy.quota),
      charges.map((c) => slotMs(c.policy)),
      charges.map(() => SLOTS),
      Math.floor(nowMs),
    ],
  );
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const states = charges.map((c) => {
    const r = byKey.get(c.key);
    if (!r) throw new Error(`rate-limit window ${c.policy.name} missing after its check`);
    return windowState(Number(r.head), r.counts.map(Number));
  });
  return { admitted: rows.length > 0 && rows[0].admitted, states };
}

const CHARGE_MANY_SQL = `select grp, key, head::float8 as head, counts, admitted
  from ratelimit_charge_many($1::int[], $2::text[], $3::int[], $4::bigint[], $5::int[],
                             $6::bigint, $7::int[])`;

/** `n` concurrent requests against the same windows. */
export interface ChargeGroup {
  charges: readonly WindowCharge[];
  n: number;
}

type ChargedRow = { grp: number; key: string; head: number; counts: number[]; admitted: number };

/**
 * Charges several groups of concurrent requests in one statement (migration 0009). Each
 * group is charged exactly as its `n` checks one after another at `nowMs` would be: the
 * first min(n, room left) are admitted. Returns each request's result, group by group.
 */
export async function chargeRateLimitGroups(
  q: Queryable,
  groups: readonly ChargeGroup[],
  nowMs: number,
): Promise<ChargeResult[][]> {
  const all = groups.flatMap((g, i) => g.charges.map((c) => ({ grp: i + 1, c })));
  const rows = await q.query<ChargedRow>(CHARGE_MANY_SQL, [
    all.map((x) => x.grp),
    all.map((x) => x.c.key),
    all.map((x) => x.c.policy.quota),
    all.map((x) => slotMs(x.c.policy)),
    all.map(() => SLOTS),
    Math.floor(nowMs),
    groups.map((g) => g.n),
  ]);
  return groups.map((g, i) => {
    const own = rows.filter((r) => Number(r.grp) === i + 1);
    return spreadCharges(g.charges, new Map(own.map((r) => [r.key, r])), g.n);
  });
}

/** Charges `n` concurrent requests against the same `charges` (one group). */
export async function chargeRateLimitWindowsBatch(
  q: Queryable,
  charges: readonly WindowCharge[],
  nowMs: number,
  n: number,
): Promise<ChargeResult[]> {
  return (await chargeRateLimitGroups(q, [{ charges, n }], nowMs))[0];
}

/** A charged window as the statement returns it. */
export interface ChargedWindow {
  head: number;
  counts: number[];
  admitted: number;
}

/**
 * One result for each of the `n` requests of a group, from its windows after the statement
 * (`byKey`): request i < admitted saw its own charge and those before it, not the later
 * ones; the refused ones see the windows after all admissions. `held`: units the statement
 * charged beyond the requests (a lease, lib/lease.ts), which no request's view counts. The
 * requests share one copy of the windows; `unseen` says what each leaves out.
 */
export function spreadCharges(
  charges: readonly WindowCharge[],
  byKey: ReadonlyMap<string, ChargedWindow>,
  n: number,
  held = 0,
): ChargeResult[] {
  const final = charges.map((c) => {
    const r = byKey.get(c.key);
    if (!r) throw new Error(`rate-limit window ${c.policy.name} missing after its check`);
    return windowState(Number(r.head), r.counts.map(Number));
  });
  const admitted = Number(byKey.get(charges[0].key)?.admitted ?? 0) - held;
  return Array.from(
    { length: n },
    (_, i) =>
      i < admitted
        ? { admitted: true, states: final, unseen: admitted - 1 - i + held }
        : { admitted: false, states: final },
  );
}

/**
 * Deletes up to `batch` windows whose newest counter left the window before `nowMs` (they
 * count nothing any more); rows a check holds are skipped. Returns how many went.
 */
export async function deleteExpiredRateLimitWindows(
  q: Queryable,
  nowMs: number,
  batch = 10_000,
): Promise<number> {
  const rows = await q.query<{ n: number }>(
    `with gone as (
       delete from ratelimit_windows where key in (
         select key from ratelimit_windows where expires_at < $1::timestamptz
          limit $2 for update skip locked)
       returning 1)
     select count(*)::int as n from gone`,
    [new Date(nowMs).toISOString(), batch],
  );
  return rows[0].n;
}
