/**
 * Sliding-window rate-limit math (pure, clock passed in) and the draft-11 RateLimit header
 * values. A window of `windowSeconds` is cut into SLOTS slots; a check counts the SLOTS + 1
 * slots overlapping (now - window, now], so no window position ever admits more than the
 * quota, and a request may be refused at most one slot (window / SLOTS) early.
 * db/migrations/0004_ratelimit.sql runs the same math atomically; `decide` is its reference.
 *
 * Why never more than the quota: take any window (a - w, a] and its last admitted request,
 * at time t <= a. Every earlier request of that window lies in (t - w, t], inside the span
 * the check at t counted, and that check saw fewer than the quota (checks are serialised by
 * the row lock and a row's clock never runs backwards). So the window holds at most quota.
 */

/** Slots per window: the worst-case early refusal is window / SLOTS. */
export const SLOTS = 60;

/** One quota: `quota` requests per `windowSeconds`, named as in the RateLimit fields. */
export interface Policy {
  name: string;
  quota: number;
  windowSeconds: number;
}

/** The counters of one window: `counts[SLOTS]` is slot `head`, `counts[0]` slot `head - SLOTS`. */
export interface WindowState {
  head: number;
  counts: number[];
  /**
   * The sum of `counts`, when whoever made the state computed it (`windowState`): every
   * request of a lease shares one state, and summing its counters per request was a cache
   * miss per user with many users.
   */
  total?: number;
}

/**
 * A window's counters with their sum, for states nobody changes afterwards (the database's
 * answers, `decide`'s). `emptyWindow` and `roll` leave the sum out: their counters may be
 * filled in by the caller.
 */
export function windowState(head: number, counts: number[]): WindowState {
  let total = 0;
  for (const c of counts) total += c;
  return { head, counts, total };
}

/** What one policy looks like to the caller after a check. */
export interface Usage {
  policy: Policy;
  /** Requests still admitted now (the draft's `r`). */
  remaining: number;
  /** Seconds until this policy admits again (r = 0) or frees its oldest counted slot (the `t`). */
  resetSeconds: number;
}

/** Milliseconds per slot of `policy`'s window. */
export function slotMs(policy: Policy): number {
  return (policy.windowSeconds * 1000) / SLOTS;
}

/** An empty window whose newest slot holds `nowMs`. */
export function emptyWindow(policy: Policy, nowMs: number): WindowState {
  return { head: Math.floor(nowMs / slotMs(policy)), counts: new Array(SLOTS + 1).fill(0) };
}

/** `state` moved forward to the slot of `nowMs`; never backwards (a late clock counts at head). */
export function roll(policy: Policy, state: WindowState, nowMs: number): WindowState {
  const head = Math.max(state.head, Math.floor(nowMs / slotMs(policy)));
  const shift = Math.min(head - state.head, SLOTS + 1);
  return { head, counts: [...state.counts.slice(shift), ...new Array(shift).fill(0)] };
}

/** Requests counted in the window. */
export function used(state: WindowState): number {
  if (state.total !== undefined) return state.total;
  // A plain loop: this runs a few times per request over SLOTS + 1 counters.
  let total = 0;
  for (const c of state.counts) total += c;
  return total;
}

/**
 * Charges one request to every window or to none: admitted only when each window, rolled
 * to `nowMs`, holds fewer than its quota. Returns the states after the check.
 */
export function decide(
  windows: { policy: Policy; state: WindowState }[],
  nowMs: number,
): { admitted: boolean; states: WindowState[] } {
  const rolled = windows.map((w) => roll(w.policy, w.state, nowMs));
  const admitted = windows.every((w, i) => used(rolled[i]) < w.policy.quota);
  if (!admitted) return { admitted, states: rolled.map((s) => windowState(s.head, s.counts)) };
  const states = rolled.map((s) =>
    windowState(s.head, s.counts.map((c, i) => i === SLOTS ? c + 1 : c))
  );
  return { admitted, states };
}

// Counter i is slot head - SLOTS + i; it leaves the counted span once the current slot
// passes i + SLOTS, i.e. at the start of slot head + i + 1.
function leavesAtMs(policy: Policy, state: WindowState, i: number): number {
  return (state.head + i + 1) * slotMs(policy);
}

// Counter i as a request sees it: the newest leaves out `unseen` units (see `usage`).
const seenAt = (state: WindowState, i: number, unseen: number) =>
  i === SLOTS ? state.counts[i] - unseen : state.counts[i];

/**
 * The instant (ms) from which the window, as a request sees it that does not count `unseen`
 * units of the newest slot, holds fewer than its quota again with no more admissions; null
 * when it already does. Other checks can only add to a window, so until then every check of
 * it is refused.
 */
export function roomAt(policy: Policy, state: WindowState, unseen = 0): number | null {
  let total = used(state) - unseen;
  if (total < policy.quota) return null;
  for (let i = 0; i < state.counts.length; i++) {
    total -= seenAt(state, i, unseen);
    if (total < policy.quota) return leavesAtMs(policy, state, i);
  }
  return leavesAtMs(policy, state, SLOTS);
}

/** `roomAt`, or `nowMs` when the window has room already. */
export function roomAtMs(policy: Policy, state: WindowState, nowMs: number): number {
  return roomAt(policy, state) ?? nowMs;
}

/**
 * Seconds from `nowMs` until `atMs` (a `roomAt`), rounded up, 0 once passed: never earlier
 * than a slot actually frees.
 */
export function secondsFrom(nowMs: number, atMs: number): number {
  return Math.max(0, Math.ceil((atMs - nowMs) / 1000));
}

/** Seconds until the window holds fewer than its quota again (`roomAt`); 0 when it does. */
export function secondsUntilRoom(
  policy: Policy,
  state: WindowState,
  nowMs: number,
  unseen = 0,
): number {
  const at = roomAt(policy, state, unseen);
  return at === null ? 0 : secondsFrom(nowMs, at);
}

/**
 * Remaining quota and reset time of one window at `nowMs`, as a request sees them that does
 * not count `unseen` units of the newest slot (charged after it, or held for a lease).
 */
export function usage(policy: Policy, state: WindowState, nowMs: number, unseen = 0): Usage {
  const remaining = Math.max(0, policy.quota - (used(state) - unseen));
  if (remaining === 0) {
    return { policy, remaining, resetSeconds: secondsUntilRoom(policy, state, nowMs, unseen) };
  }
  let oldest = 0;
  while (oldest <= SLOTS && seenAt(state, oldest, unseen) <= 0) oldest++;
  const resetSeconds = oldest > SLOTS ? 0 : secondsFrom(nowMs, leavesAtMs(policy, state, oldest));
  return { policy, remaining, resetSeconds };
}

/** The policy closest to exhaustion: fewest remaining, then the longest wait. */
export function closestToExhaustion(usages: readonly Usage[]): Usage {
  return usages.reduce((best, u) =>
    u.remaining < best.remaining ||
      (u.remaining === best.remaining && u.resetSeconds > best.resetSeconds)
      ? u
      : best
  );
}

/** The `RateLimit-Policy` field value: `"sharp-minute";q=60;w=60, "sharp-day";q=5000;w=86400`. */
export function policyHeader(policies: readonly Policy[]): string {
  return policies.map((p) => `"${p.name}";q=${p.quota};w=${p.windowSeconds}`).join(", ");
}

/** The `RateLimit` field value for one policy: `"sharp-minute";r=17;t=23`. */
export function rateLimitHeader(u: Usage): string {
  return `"${u.policy.name}";r=${u.remaining};t=${u.resetSeconds}`;
}
