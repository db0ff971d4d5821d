import assert from "node:assert/strict";
import {
  closestToExhaustion,
  decide,
  emptyWindow,
  type Policy,
  policyHeader,
  rateLimitHeader,
  roll,
  secondsUntilRoom,
  SLOTS,
  usage,
  type WindowState,
} from "../lib/ratelimit.ts";

const MINUTE: Policy = { name: "m", quota: 3, windowSeconds: 60 };
const DAY: Policy = { name: "d", quota: 5, windowSeconds: 86_400 };
const T0 = Date.UTC(2026, 4, 27, 12, 0, 0); // on a slot boundary of both windows

/** Runs `decide` on one policy at each time in `times`; returns the admitted flags and state. */
function run(policy: Policy, times: number[]): { admitted: boolean[]; state: WindowState } {
  let state = emptyWindow(policy, times[0]);
  const admitted = times.map((t) => {
    const d = decide([{ policy, state }], t);
    state = d.states[0];
    return d.admitted;
  });
  return { admitted, state };
}

Deno.test("decide() admits the quota, then refuses within the window", () => {
  const { admitted } = run(MINUTE, [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 59_000]);
  assert.deepEqual(admitted, [true, true, true, false, false]);
});

Deno.test("decide() admits again once the oldest slot has left the window", () => {
  // Requests at 0 s, 10 s, 20 s fill the minute; the 0 s slot leaves the counted span at 61 s
  // (the window counts whole slots: at most one 1 s slot early, never late).
  const base = [T0, T0 + 10_000, T0 + 20_000];
  assert.deepEqual(run(MINUTE, [...base, T0 + 60_999]).admitted, [true, true, true, false]);
  assert.deepEqual(run(MINUTE, [...base, T0 + 61_000]).admitted, [true, true, true, true]);
});

Deno.test("decide() never admits more than the quota in any window position", () => {
  // Requests every 250 ms for 5 minutes: check every 60 s span of the admitted ones.
  const times = Array.from({ length: 1200 }, (_, i) => T0 + 137 + i * 250);
  const { admitted } = run(MINUTE, times);
  const ok = times.filter((_, i) => admitted[i]);
  for (let i = 0; i < ok.length; i++) {
    const inWindow = ok.filter((t) => t > ok[i] - 60_000 && t <= ok[i]).length;
    assert.ok(inWindow <= MINUTE.quota, `${inWindow} admitted in the window ending at ${ok[i]}`);
  }
  assert.ok(ok.length >= 15, `at least quota per 61 s admitted, got ${ok.length}`);
});

Deno.test("roll() moves forward, clears stale slots, and never runs backwards", () => {
  const s = { head: 100, counts: [...new Array(SLOTS).fill(0), 4] };
  assert.deepEqual(roll(MINUTE, s, 101_000).counts.slice(-2), [4, 0]);
  assert.equal(roll(MINUTE, s, 101_000).head, 101);
  assert.equal(roll(MINUTE, s, 99_000).head, 100, "a late clock counts at head");
  assert.deepEqual(roll(MINUTE, s, 99_000).counts, s.counts);
  assert.equal(roll(MINUTE, s, 500_000).counts.reduce((a, b) => a + b), 0);
});

Deno.test("decide() with several windows charges all of them or none", () => {
  const minute = { ...MINUTE, quota: 10 };
  let states = [emptyWindow(minute, T0), emptyWindow(DAY, T0)];
  const flags: boolean[] = [];
  for (let i = 0; i < 7; i++) {
    const d = decide([{ policy: minute, state: states[0] }, { policy: DAY, state: states[1] }], T0);
    states = d.states;
    flags.push(d.admitted);
  }
  assert.deepEqual(flags, [true, true, true, true, true, false, false]);
  const minuteUsed = states[0].counts.reduce((a, b) => a + b);
  assert.equal(minuteUsed, 5, "refusals by the day window consumed no minute quota");
});

Deno.test("secondsUntilRoom() is when a slot frees, rounded up, never earlier", () => {
  const { state } = run(MINUTE, [T0, T0 + 10_000, T0 + 20_000]);
  // The slot of T0 leaves at T0 + 61 s.
  assert.equal(secondsUntilRoom(MINUTE, state, T0 + 20_000), 41);
  assert.equal(secondsUntilRoom(MINUTE, state, T0 + 20_500), 41);
  assert.equal(secondsUntilRoom(MINUTE, state, T0 + 60_001), 1);
  // With the quota lowered to 2, two slots must go: the T0 + 10 s slot leaves at T0 + 71 s.
  assert.equal(secondsUntilRoom({ ...MINUTE, quota: 2 }, state, T0 + 20_000), 51);
  // Day window: 24-minute slots, so the wait ends on a slot boundary.
  const day = run(DAY, [T0, T0, T0, T0, T0 + 3_600_000]).state;
  assert.equal(secondsUntilRoom(DAY, day, T0 + 3_600_000), 86_400 + 1440 - 3600);
});

Deno.test("usage() reports remaining and the reset of the oldest counted slot", () => {
  const { state } = run(MINUTE, [T0, T0 + 30_000]);
  assert.deepEqual(usage(MINUTE, state, T0 + 30_000), {
    policy: MINUTE,
    remaining: 1,
    resetSeconds: 31,
  });
  assert.equal(usage(MINUTE, emptyWindow(MINUTE, T0), T0).resetSeconds, 0);
});

Deno.test("usage() leaves out the newest slot's unseen units (later charges, a held lease)", () => {
  const roomy = { ...MINUTE, quota: 10 };
  // 1 request at T0, then 1 at T0 + 30 s charged with 3 units more held as a lease.
  const state = { ...emptyWindow(roomy, T0 + 30_000) };
  state.counts[SLOTS - 30] = 1;
  state.counts[SLOTS] = 4;
  assert.deepEqual(usage(roomy, state, T0 + 30_000, 3), {
    policy: roomy,
    remaining: 8,
    resetSeconds: 31,
  });
  assert.equal(usage(roomy, state, T0 + 30_000).remaining, 5, "all units counted");
  // Only the newest slot, all of it unseen: nothing counted, nothing to reset.
  const fresh = emptyWindow(roomy, T0);
  fresh.counts[SLOTS] = 4;
  assert.deepEqual(usage(roomy, fresh, T0, 4), { policy: roomy, remaining: 10, resetSeconds: 0 });
  assert.equal(usage(roomy, fresh, T0, 3).resetSeconds, 61, "one seen: the newest slot's");
  // Full as the request sees it: the wait counts the slots it sees.
  const full = emptyWindow(roomy, T0);
  full.counts[0] = 9;
  full.counts[SLOTS] = 3;
  assert.equal(usage(roomy, full, T0, 2).remaining, 0);
  assert.equal(secondsUntilRoom(roomy, full, T0, 2), 1, "the 9 leave at T0 + 1 s");
});

Deno.test("closestToExhaustion() picks the fewest remaining, then the longest wait", () => {
  const u = (name: string, remaining: number, resetSeconds: number) => ({
    policy: { name, quota: 9, windowSeconds: 60 },
    remaining,
    resetSeconds,
  });
  assert.equal(closestToExhaustion([u("a", 5, 1), u("b", 2, 9)]).policy.name, "b");
  assert.equal(closestToExhaustion([u("a", 0, 10), u("b", 0, 900)]).policy.name, "b");
});

Deno.test("policyHeader() and rateLimitHeader() use the draft-11 syntax", () => {
  const minute = { name: "sharp-minute", quota: 60, windowSeconds: 60 };
  const day = { name: "sharp-day", quota: 5000, windowSeconds: 86_400 };
  assert.equal(
    policyHeader([minute, day]),
    '"sharp-minute";q=60;w=60, "sharp-day";q=5000;w=86400',
  );
  assert.equal(
    rateLimitHeader({ policy: minute, remaining: 17, resetSeconds: 23 }),
    '"sharp-minute";r=17;t=23',
  );
});
