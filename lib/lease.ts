/**
 * Rate-limit leases (pure, clock passed in): when a user's windows have plenty of room, the
 * request gate charges a few units more than the requests asking, and this instance admits
 * later requests against them without a database round trip.
 *
 * Why it stays exact: leased units are charged to the windows' current slots before any
 * request uses them, and a lease is used only until the first of those slots ends. So every
 * request admitted on a lease is counted in a slot no later than its own, and no window
 * position ever holds more than its quota, across instances. What it can cost: units still
 * unused when the slot ends stay counted until they leave the window (never refunded), so a
 * user may be refused early by at most that much. It is bounded by asking only for what the
 * last second's rate needs for the rest of the slot (with a margin for the rate's variance),
 * never more than LEASE_ROOM_SHARE of the room, and nothing at all unless every window has
 * LEASE_MIN_ROOM left: near the limit, charging is per request again.
 */
import { type Policy, roll, slotMs, used, type WindowState } from "./ratelimit.ts";

/** No lease unless every window has this much room: close to a limit, nothing is held. */
export const LEASE_MIN_ROOM = 100;
/** A lease never takes more than this share of a window's room. */
const LEASE_ROOM_SHARE = 0.01;

/** A charge outcome as the limiter answers it. */
export interface Charged {
  admitted: boolean;
  states: WindowState[];
  /** Units counted in the newest slots that this request does not see (still held). */
  unseen?: number;
  /** For a unit of a lease: the lease's end, which identifies it to `giveBack`. */
  leaseEndMs?: number;
}

interface Entry {
  /** Units charged and not yet used; usable until `validUntilMs`. */
  left: number;
  validUntilMs: number;
  /** The windows after the charge that granted the lease (all its units counted). */
  states: WindowState[];
  /** Requests seen in the current and the previous second, for the rate. */
  second: number;
  seenNow: number;
  seenBefore: number;
}

/** The leases of one instance, keyed by the windows' signature. */
export interface LeaseBook {
  /** Counts a request for the rate; call once per request before `extra`/`take`. */
  seen(sig: string, nowMs: number): void;
  /** Uses one unit: the outcome to answer with (admitted), or null when none is left. */
  take(sig: string, nowMs: number): Charged | null;
  /** `seen`, then `take`, with one look-up of `sig`: a request's first call. */
  arrive(sig: string, nowMs: number): Charged | null;
  /**
   * Returns a unit `take` gave to a request that did not go ahead, if its lease still runs:
   * a unit charged to an earlier slot must not serve a later one.
   */
  giveBack(sig: string, taken: Charged): void;
  /** Units to ask beyond this request. */
  extra(sig: string, policies: readonly Policy[], nowMs: number): number;
  /**
   * Records a charge's windows and the `leased` units it granted beyond its requests (0: none;
   * a lease granted to another request of the same tick is kept).
   */
  grant(sig: string, policies: readonly Policy[], states: WindowState[], leased: number): void;
}

/** The end of the earliest current slot among the windows: a lease's last instant. */
export function leaseEndMs(policies: readonly Policy[], states: readonly WindowState[]): number {
  return Math.min(...policies.map((p, i) => (states[i].head + 1) * slotMs(p)));
}

/** An empty book holding at most `max` signatures (cleared whole when full). */
export function createLeaseBook(max = 10_000): LeaseBook {
  const book = new Map<string, Entry>();
  const entry = (sig: string): Entry => {
    let e = book.get(sig);
    if (!e) {
      if (book.size >= max) book.clear();
      e = { left: 0, validUntilMs: 0, states: [], second: 0, seenNow: 0, seenBefore: 0 };
      book.set(sig, e);
    }
    return e;
  };
  const count = (e: Entry, nowMs: number) => {
    const second = Math.floor(nowMs / 1000);
    if (second !== e.second) {
      e.seenBefore = second === e.second + 1 ? e.seenNow : 0;
      e.seenNow = 0;
      e.second = second;
    }
    e.seenNow++;
  };
  const use = (e: Entry | undefined, nowMs: number): Charged | null => {
    if (!e || e.left <= 0 || nowMs >= e.validUntilMs) return null;
    e.left--;
    // The units still held are counted in the windows, not yet used: this request's view
    // leaves them out.
    return { admitted: true, states: e.states, unseen: e.left, leaseEndMs: e.validUntilMs };
  };
  return {
    seen(sig, nowMs) {
      count(entry(sig), nowMs);
    },
    take(sig, nowMs) {
      return use(book.get(sig), nowMs);
    },
    arrive(sig, nowMs) {
      const e = entry(sig);
      count(e, nowMs);
      return use(e, nowMs);
    },
    giveBack(sig, taken) {
      const e = book.get(sig);
      if (e && taken.leaseEndMs === e.validUntilMs) e.left++;
    },
    extra(sig, policies, nowMs) {
      const e = book.get(sig);
      if (!e || e.states.length !== policies.length) return 0;
      const room = Math.min(
        ...policies.map((p, i) => p.quota - used(roll(p, e.states[i], nowMs)) - 1),
      );
      if (room < LEASE_MIN_ROOM) return 0;
      const rate = Math.max(e.seenNow, e.seenBefore);
      const msLeft = Math.min(...policies.map((p) => slotMs(p) - (nowMs % slotMs(p))));
      // Arrivals vary from second to second: two standard deviations more than the rate
      // expects (Poisson), so that a lease seldom runs out early and costs a second charge.
      const expected = (rate * msLeft) / 1000;
      const wanted = Math.ceil(expected + 2 * Math.sqrt(expected));
      return Math.max(0, Math.min(wanted, Math.floor(room * LEASE_ROOM_SHARE)));
    },
    grant(sig, policies, states, leased) {
      const e = entry(sig);
      if (leased > 0) {
        // A second lease of the same slot (asked while the first was on its way): both are
        // charged, so both are usable.
        const end = leaseEndMs(policies, states);
        e.left = end === e.validUntilMs ? e.left + leased : leased;
        e.states = states;
        e.validUntilMs = end;
      } else if (e.left === 0 || e.states.length === 0) {
        // Only the windows, for the next `extra`; a lease granted in the same tick stays.
        e.states = states;
      }
    },
  };
}
