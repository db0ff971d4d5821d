/**
 * The request gate: for many concurrent requests, in one statement and one round trip, the
 * credentials as they are now, the rate-limit charges of the requests whose credentials
 * still hold, and the data versions. It is the whole database part of a cached data read.
 */
import type { Queryable } from "./client.ts";
import type { CredentialMemo } from "../lib/credential_memo.ts";
import type { CredentialRef, Tier } from "../lib/policy.ts";
import { slotMs, SLOTS } from "../lib/ratelimit.ts";
import {
  type ChargedWindow,
  type ChargeResult,
  spreadCharges,
  type WindowCharge,
} from "./ratelimits.ts";

/** What a request believes its caller is; the gate charges it only when that still holds. */
export interface Expectation {
  /** Null for ops tokens, which have no user. */
  userId: string | null;
  tier: Tier | null;
}

/** One request at the gate. */
export interface GateItem {
  /** The credential to check now; null when the caller was verified already (or is anonymous). */
  ref: CredentialRef | null;
  /** Charge only if the credential's user and tier are these; null: look up, charge nothing. */
  expect: Expectation | null;
  /** Windows to charge (all or none); empty for none. */
  charges: readonly WindowCharge[];
  /**
   * Units to charge beyond the request, as a lease (lib/lease.ts), if the windows have the
   * room once every request is admitted. A group of one tick asks the largest of its items'.
   */
  extra?: number;
}

/** A credential as stored now. `live`: not revoked, not expired, its user not disabled. */
export interface LiveCredential {
  live: boolean;
  credentialId: string;
  userId: string | null;
  tier: Tier | null;
  /** An ops token's scopes; null for the others. */
  scopes: string[] | null;
}

/** What a gate remembers of the credentials it found (lib/credential_memo.ts). */
export type GateMemo = CredentialMemo<LiveCredential>;

/** One request's outcome. */
export interface GateResult {
  /** The credential now; null when `ref` was null or nothing matched it. */
  found: LiveCredential | null;
  /** The credential holds as expected (always true without a ref; false for a lookup). */
  verified: boolean;
  /** The charge's outcome; null when nothing was charged (no charges, or not verified). */
  charge: ChargeResult | null;
  /** Every dataset's version (data_versions) as the statement saw it. */
  versions: Record<string, number>;
  /** Lease units granted beyond the requests; on the first verified request of a group. */
  leased: number;
}

/**
 * A parameter the statements carry and never read, so that their message is at least 1 KiB:
 * postgres.js (3.4.9, connection.js `write`) sends a shorter one only at the next
 * `setImmediate`, after the event loop's next poll, which under load is a whole turn of HTTP
 * work that every request of the batch waits for; a longer one it writes at once. Measured on
 * the hot-key bench: 16–21k req/s without, 17–23k with (interleaved runs; README, Performance).
 * A client that writes at once anyway (db/wire.ts) gets an empty one.
 */
const WRITE_NOW = " ".repeat(1024);
const padding = (q: Queryable) => q.writesAtOnce ? "" : WRITE_NOW;

// Items are verified first (found + live + the expected user and tier), then each group of
// items sharing the same windows is charged for its verified items by ratelimit_charge_many
// (migration 0009: exact, all windows or none, rows locked in key order). Three row kinds
// come back: 'item' per request, 'window' per charged window, one 'versions'.
const GATE_SQL = `
with write_now as (select $16::text), epoch as (
  select e, e is distinct from $18::bigint as moved
    from (select (select epoch from credential_epoch) as e) x
), items as (
  select i.idx::int as idx, i.kind, i.hash, i.sid, i.usr, i.tier, i.grp, i.extra,
         case when (select moved from epoch) then null else i.pre end as pre
    from unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::int[],
                $15::int[], $17::boolean[])
           with ordinality as i(kind, hash, sid, usr, tier, grp, extra, pre, idx)
), asked as (
  select * from items where pre is null
), found as (
  select it.idx, f.credential_id, f.user_id, f.tier, f.scopes, f.live, f.live_until
    from asked it
    join gate_lookup(
           (select array_agg(hash) from asked where kind = 'apiKey'),
           (select array_agg(sid) from asked where kind = 'session'),
           (select array_agg(hash) from asked where kind = 'opsToken'),
           $12::timestamptz) f
      on f.kind = it.kind and f.ref = coalesce(it.hash, it.sid::text)
), checked as (
  select it.idx, it.grp, it.extra, f.credential_id, f.user_id, f.tier, f.scopes, f.live,
         f.live_until,
         coalesce(it.pre,
                  it.kind is null
                    or (coalesce(f.live, false) and it.usr is not distinct from f.user_id
                        and it.tier is not distinct from f.tier)) as verified
    from items it left join found f on f.idx = it.idx
), wanted as (
  select coalesce(array_agg(coalesce(c.n, 0) order by g), '{}') as n
    from generate_series(1, $13::int) g
    left join (select grp,
                      (count(*) filter (where verified))::int
                        + case when bool_or(verified) then max(extra) else 0 end as n
                 from checked where grp > 0 group by grp) c on c.grp = g
), charged as (
  select r.* from wanted w
   cross join lateral ratelimit_charge_many($7::int[], $8::text[], $9::int[], $10::bigint[],
                                            $11::int[], $14::bigint, w.n) r
   where $13::int > 0
)
select 'item' as row_kind, c.idx, c.grp, c.credential_id, c.user_id, c.tier, c.scopes,
       c.live, c.verified, null::text as key, null::float8 as head, null::int[] as counts,
       null::int as admitted, null::jsonb as versions, c.live_until
  from checked c
union all
select 'window', null, ch.grp, null, null, null, null, null, null, ch.key, ch.head::float8,
       ch.counts, ch.admitted, null, null
  from charged ch
union all
select 'versions', null, null, (select e from epoch)::text, null, null, null,
       (select moved from epoch), null, null, null, null, null,
       (select coalesce(jsonb_object_agg(dataset, version), '{}') from data_versions), null`;

// A batch that charges nothing (the common case once leases serve the limits): the
// credentials by key, each once (gate_lookup, migration 0010), and the versions. Cheaper
// than GATE_SQL; the same answers. The remembered credentials ($6-$8) are looked up only if
// the epoch moved from the memo's ($9).
const LOOKUP_SQL = `
with write_now as (select $5::text), epoch as (
  select e, e is distinct from $9::bigint as moved
    from (select (select epoch from credential_epoch) as e) x
)
select kind, ref, credential_id, user_id, tier, scopes, live, live_until
  from epoch,
       gate_lookup(case when moved then $1::text[] || $6::text[] else $1::text[] end,
                   case when moved then $2::uuid[] || $7::uuid[] else $2::uuid[] end,
                   case when moved then $3::text[] || $8::text[] else $3::text[] end,
                   $4::timestamptz)
union all
select 'versions', (select coalesce(jsonb_object_agg(dataset, version), '{}')::text
                      from data_versions), e::text, null, null, null, moved, null
  from epoch`;

type LookupRow = {
  kind: "apiKey" | "session" | "opsToken" | "versions";
  ref: string;
  credential_id: string;
  user_id: string | null;
  tier: Tier | null;
  scopes: string[] | null;
  live: boolean;
  live_until: Date | string | null;
};

/** A found credential's row as the gate answers it. */
function liveCredential(r: {
  live: boolean | null;
  credential_id: string | null;
  user_id: string | null;
  tier: Tier | null;
  scopes: string[] | null;
}): LiveCredential {
  return {
    live: r.live === true,
    credentialId: r.credential_id!,
    userId: r.user_id,
    tier: r.tier,
    scopes: r.scopes,
  };
}

const refString = (ref: CredentialRef) => ref.kind === "session" ? ref.sessionId : ref.hash;

/** The request holds as expected: the same predicate GATE_SQL charges by. */
function holds(it: GateItem, found: LiveCredential | null): boolean {
  if (it.ref === null) return true;
  return it.expect !== null && found !== null && found.live &&
    found.userId === it.expect.userId && found.tier === it.expect.tier;
}

const numbers = (o: Record<string, number | string>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));

// A timestamp as milliseconds (the wire client answers text: microseconds are cut, which
// ends a remembered credential early, never late; what will not parse, such as 'infinity',
// gives NaN, and a memo never answers past NaN).
const instantMs = (t: Date | string | null) => t === null ? null : new Date(t).getTime();

/** Each item's credential as `memo` remembers it at `nowMs` (null: to be looked up). */
function recalled(items: readonly GateItem[], memo: GateMemo | null, nowMs: number) {
  return items.map((it) => (it.ref && memo?.recall(it.ref.kind, refString(it.ref), nowMs)) || null);
}

/** A credential row of either statement, as the memo keeps it. */
type FoundRow = Parameters<typeof liveCredential>[0] & { live_until: Date | string | null };

/** Remembers the live credentials a statement found (by kind and id), under the epoch it read. */
function learn(memo: GateMemo | null, epoch: string | null, found: [string, string, FoundRow][]) {
  if (!memo || epoch === null) return;
  memo.learn(
    epoch,
    found.filter(([, , r]) => r.live === true).map((
      [kind, id, r],
    ) => [kind, id, liveCredential(r), instantMs(r.live_until)]),
  );
}

const KIND_SLOT = { apiKey: 0, session: 1, opsToken: 2 } as const;

async function lookupOnly(
  q: Queryable,
  items: readonly GateItem[],
  nowMs: number,
  memo: GateMemo | null,
): Promise<GateResult[]> {
  const remembered = recalled(items, memo, nowMs);
  // Each credential once, by kind: looked up ($1-$3), or remembered ($6-$8, looked up only
  // if the epoch moved).
  const sets = [0, 1, 2, 3, 4, 5].map(() => new Set<string>());
  items.forEach((it, i) => {
    if (it.ref) sets[KIND_SLOT[it.ref.kind] + (remembered[i] ? 3 : 0)].add(refString(it.ref));
  });
  const [keys, sessions, tokens, memoKeys, memoSessions, memoTokens] = sets.map((x) => [...x]);
  const rows = await q.query<LookupRow>(LOOKUP_SQL, [
    keys,
    sessions,
    tokens,
    new Date(nowMs).toISOString(),
    padding(q),
    memoKeys,
    memoSessions,
    memoTokens,
    memo?.epoch ?? null,
  ]);
  const head = rows.find((r) => r.kind === "versions");
  const versions = numbers(JSON.parse(head?.ref ?? "{}"));
  const foundRows = rows.filter((r) => r.kind !== "versions");
  const byRef = new Map(foundRows.map((r) => [r.kind + r.ref, r]));
  // The memo answers only when the statement read its epoch (moved: everything looked up).
  const moved = head?.live !== false;
  const results = items.map((it, i) => {
    // A key is built only when the statement found something (not when the memo answered all).
    const r = it.ref && byRef.size ? byRef.get(it.ref.kind + refString(it.ref)) : undefined;
    const found = r ? liveCredential(r) : moved ? null : remembered[i];
    return { found, verified: holds(it, found), charge: null, versions, leased: 0 };
  });
  learn(memo, head?.credential_id ?? null, foundRows.map((r) => [r.kind, r.ref, r]));
  return results;
}

type GateRow = {
  row_kind: "item" | "window" | "versions";
  idx: number | null;
  grp: number | null;
  credential_id: string | null;
  user_id: string | null;
  tier: Tier | null;
  scopes: string[] | null;
  live: boolean | null;
  verified: boolean | null;
  key: string | null;
  head: number | null;
  counts: number[] | null;
  admitted: number | null;
  versions: Record<string, number | string> | null;
  live_until: Date | string | null;
};

/** Items that charge the same windows, in arrival order: one group of the statement. */
interface Group {
  charges: readonly WindowCharge[];
  items: number[];
}

function groupByWindows(items: readonly GateItem[]): { groups: Group[]; groupOf: number[] } {
  const byKeys = new Map<string, number>();
  const groups: Group[] = [];
  const groupOf = items.map((it, i) => {
    if (it.charges.length === 0 || (it.ref !== null && it.expect === null)) return 0;
    // A key belongs to one group; checks of one tick that saw different quotas (a setting
    // changing) use the first one's.
    const keys = it.charges.map((c) => c.key).join(",");
    let g = byKeys.get(keys);
    if (g === undefined) {
      groups.push({ charges: it.charges, items: [] });
      g = groups.length;
      byKeys.set(keys, g);
    }
    groups[g - 1].items.push(i);
    return g;
  });
  return { groups, groupOf };
}

/**
 * Runs `items` through the gate at `nowMs` in one statement. Results come back in the order
 * of `items`; within a group, verified requests are admitted in order until a window is full.
 */
export async function runGate(
  q: Queryable,
  items: readonly GateItem[],
  nowMs: number,
  memo: GateMemo | null = null,
): Promise<GateResult[]> {
  const { groups, groupOf } = groupByWindows(items);
  if (groups.length === 0) return await lookupOnly(q, items, nowMs, memo);
  const remembered = recalled(items, memo, nowMs);
  const windows = groups.flatMap((g, i) => g.charges.map((c) => ({ grp: i + 1, c })));
  const rows = await q.query<GateRow>(GATE_SQL, [
    items.map((it) => it.ref?.kind ?? null),
    items.map((it) => {
      const r = it.ref;
      return r && r.kind !== "session" ? r.hash : null;
    }),
    items.map((it) => {
      const r = it.ref;
      return r?.kind === "session" ? r.sessionId : null;
    }),
    items.map((it) => it.expect?.userId ?? null),
    items.map((it) => it.expect?.tier ?? null),
    groupOf,
    windows.map((w) => w.grp),
    windows.map((w) => w.c.key),
    windows.map((w) => w.c.policy.quota),
    windows.map((w) => slotMs(w.c.policy)),
    windows.map(() => SLOTS),
    new Date(nowMs).toISOString(),
    groups.length,
    Math.floor(nowMs),
    items.map((it) => Math.max(0, Math.floor(it.extra ?? 0))),
    padding(q),
    remembered.map((found, i) => found ? holds(items[i], found) : null),
    memo?.epoch ?? null,
  ]);
  const head = rows.find((r) => r.row_kind === "versions");
  const versions = numbers(head?.versions ?? {});
  const moved = head?.live !== false;
  const itemRows = new Map<number, GateRow>();
  const windowRows = groups.map(() => new Map<string, ChargedWindow>());
  for (const r of rows) {
    if (r.row_kind === "item") itemRows.set(Number(r.idx), r);
    else if (r.row_kind === "window") windowRows[Number(r.grp) - 1].set(r.key!, r as ChargedWindow);
  }
  const charges = new Map<number, ChargeResult>();
  const leased = new Map<number, number>();
  groups.forEach((g, i) => {
    const verified = g.items.filter((idx) => itemRows.get(idx + 1)?.verified);
    const admitted = Number(windowRows[i].get(g.charges[0].key)?.admitted ?? 0);
    const held = Math.max(0, admitted - verified.length);
    const results = spreadCharges(g.charges, windowRows[i], verified.length, held);
    verified.forEach((idx, k) => charges.set(idx, results[k]));
    if (held) leased.set(verified[0], held);
  });
  learn(
    memo,
    head?.credential_id ?? null,
    items.flatMap((it, i) => {
      const r = itemRows.get(i + 1);
      const ref = it.ref;
      return ref && r?.credential_id ? [[ref.kind, refString(ref), r] as const] : [];
    }),
  );
  return items.map((it, i) => {
    const r = itemRows.get(i + 1);
    const found = r?.credential_id ? liveCredential(r) : moved ? null : remembered[i];
    // A lookup expects nothing, so it verifies nothing: its caller reads `found`.
    const verified = r?.verified === true && !(it.ref !== null && it.expect === null);
    return {
      found,
      verified,
      charge: charges.get(i) ?? null,
      versions,
      leased: leased.get(i) ?? 0,
    };
  });
}
