/** lib/lease.ts: leases last until the first slot ends, and none is asked near a limit. */
import assert from "node:assert/strict";
import { createLeaseBook, LEASE_MIN_ROOM, leaseEndMs } from "../lib/lease.ts";
import { emptyWindow, type Policy, SLOTS, used, type WindowState } from "../lib/ratelimit.ts";

const MINUTE: Policy = { name: "m", quota: 1_000_000, windowSeconds: 60 };
const DAY: Policy = { name: "d", quota: 10_000_000, windowSeconds: 86_400 };
const POLICIES = [MINUTE, DAY];
const T0 = 1_780_000_000_000; // a whole second

/** The windows after a charge of `units` at `nowMs` on top of `before` requests. */
function charged(nowMs: number, units: number, before = 0): WindowState[] {
  return POLICIES.map((p) => {
    const w = emptyWindow(p, nowMs);
    w.counts[SLOTS] = before + units;
    return w;
  });
}

Deno.test("leaseEndMs() is the end of the earliest current slot", () => {
  // The minute window's slots are 1 s; the day's 1,440 s.
  assert.equal(leaseEndMs(POLICIES, charged(T0 + 250, 1)), T0 + 1000);
});

Deno.test("a lease serves its units until the slot ends, then nothing", () => {
  const book = createLeaseBook();
  book.grant("s", POLICIES, charged(T0 + 100, 1 + 3), 3);
  const seen = [1, 2, 3].map(() => book.take("s", T0 + 200));
  assert.ok(seen.every((r) => r?.admitted));
  // Each request sees its own charge and those before it, not the units still held.
  assert.deepEqual(seen.map((r) => used(r!.states[0]) - r!.unseen!), [2, 3, 4]);
  assert.equal(book.take("s", T0 + 200), null, "3 units, 3 requests");

  book.grant("s", POLICIES, charged(T0 + 100, 1 + 5), 5);
  assert.equal(book.take("s", T0 + 999)?.admitted, true);
  assert.equal(book.take("s", T0 + 1000), null, "the slot ended");
});

Deno.test("extra() follows the last second's rate for the rest of the slot", () => {
  const book = createLeaseBook();
  for (let i = 0; i < 400; i++) book.seen("s", T0 - 500);
  book.grant("s", POLICIES, charged(T0 - 500, 1), 0);
  // 400 requests last second, a quarter of this slot left: 100 expected, and two standard
  // deviations of a Poisson count (2 × √100) more, so that the lease seldom runs out early.
  assert.equal(book.extra("s", POLICIES, T0 + 750), 120);
  // A tenth of the slot left: 40 expected, 40 + 2√40 = 52.6.
  assert.equal(book.extra("s", POLICIES, T0 + 900), 53);
  assert.equal(book.extra("unknown", POLICIES, T0), 0, "nothing known: nothing held");
});

Deno.test("extra() asks nothing near a limit, and at most 1% of the room", () => {
  const book = createLeaseBook();
  const tight: Policy[] = [{ ...MINUTE, quota: LEASE_MIN_ROOM + 10 }, DAY];
  for (let i = 0; i < 1000; i++) book.seen("s", T0);
  // 9 used, and this request: room 100 for more, 1% of it.
  book.grant("s", tight, charged(T0, 1, 8), 0);
  assert.equal(book.extra("s", tight, T0 + 10), 1, "room 100: 1");
  book.grant("s", tight, charged(T0, 1, 9), 0);
  assert.equal(book.extra("s", tight, T0 + 10), 0, "room 99: per request again");
  const roomy: Policy[] = [{ ...MINUTE, quota: 50_000 }, DAY];
  book.grant("s", roomy, charged(T0, 1), 0);
  assert.equal(book.extra("s", roomy, T0 + 10), 499, "1% of the room");
});

Deno.test("grant() without units keeps a lease another request of the tick was given", () => {
  const book = createLeaseBook();
  book.grant("s", POLICIES, charged(T0, 1 + 4), 4);
  book.grant("s", POLICIES, charged(T0, 2 + 4), 0);
  assert.equal(book.take("s", T0 + 1)?.admitted, true);
});

Deno.test("a second lease of the same slot adds to the first; of the next slot, replaces it", () => {
  const book = createLeaseBook();
  // Two requests charged in one slot, each with a lease: 2 requests and 3 + 2 units counted.
  book.grant("s", POLICIES, charged(T0 + 10, 1 + 3), 3);
  book.grant("s", POLICIES, charged(T0 + 20, 1 + 3 + 1 + 2), 2);
  const seen = [1, 2, 3, 4, 5].map(() => book.take("s", T0 + 30));
  assert.deepEqual(seen.map((r) => used(r!.states[0]) - r!.unseen!), [3, 4, 5, 6, 7]);
  assert.equal(book.take("s", T0 + 30), null, "5 units, 5 requests");
  // Units of an ended slot are not carried into the next one.
  book.grant("s", POLICIES, charged(T0 + 500, 1 + 4), 4);
  book.grant("s", POLICIES, charged(T0 + 1000, 1 + 2), 2);
  assert.ok(book.take("s", T0 + 1001));
  assert.ok(book.take("s", T0 + 1001));
  assert.equal(book.take("s", T0 + 1001), null, "only the new slot's 2");
});

Deno.test("giveBack() returns a unit to its own lease only", () => {
  const book = createLeaseBook();
  book.grant("s", POLICIES, charged(T0, 1 + 1), 1);
  const unit = book.take("s", T0 + 1)!;
  assert.equal(book.take("s", T0 + 1), null);
  book.giveBack("s", unit);
  assert.equal(book.take("s", T0 + 2)?.admitted, true);
  // A lease of the next slot does not take back a unit charged to this one.
  book.grant("s", POLICIES, charged(T0 + 1000, 1 + 1), 1);
  book.giveBack("s", unit);
  assert.ok(book.take("s", T0 + 1001));
  assert.equal(book.take("s", T0 + 1001), null);
});
