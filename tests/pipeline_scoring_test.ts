import assert from "node:assert/strict";
import { gradePick, profitPerUnit, round4, scoreDay, unitsFor } from "../lib/scoring.ts";
import { isIsoDate, validateCommand } from "../lib/commands.ts";
import { backoffMs, shouldRetry } from "../lib/jobs.ts";
import { ApiError } from "../lib/problem.ts";

Deno.test("profitPerUnit() pays odds/100 at plus money and 100/|odds| at minus money", () => {
  assert.equal(profitPerUnit(150), 1.5);
  assert.equal(profitPerUnit(100), 1);
  assert.equal(profitPerUnit(-100), 1);
  assert.equal(profitPerUnit(-200), 0.5);
  assert.equal(round4(profitPerUnit(-110)), 0.9091);
  assert.throws(() => profitPerUnit(99), RangeError);
  assert.throws(() => profitPerUnit(-110.5), RangeError);
});

Deno.test("gradePick() grades over, under, push and void", () => {
  assert.equal(gradePick({ line: 25.5, side: "over" }, 28), "win");
  assert.equal(gradePick({ line: 25.5, side: "over" }, 20), "loss");
  assert.equal(gradePick({ line: 25.5, side: "under" }, 20), "win");
  assert.equal(gradePick({ line: 25.5, side: "under" }, 26), "loss");
  assert.equal(gradePick({ line: 27, side: "over" }, 27), "push");
  assert.equal(gradePick({ line: 27, side: "under" }, 27), "push");
  assert.equal(gradePick({ line: 27, side: "under" }, null), "void");
});

Deno.test("unitsFor() returns the stake on push and void and costs it on a loss", () => {
  assert.equal(unitsFor("win", 120), 1.2);
  assert.equal(unitsFor("loss", 120), -1);
  assert.equal(unitsFor("push", -110), 0);
  assert.equal(unitsFor("void", -110), 0);
});

Deno.test("scoreDay() totals record, units and ROI overall and by market", () => {
  const score = scoreDay([
    { market: "points", odds: -110, outcome: "win" }, // +0.909090…
    { market: "threes", odds: 120, outcome: "win" }, // +1.2
    { market: "points", odds: 105, outcome: "loss" }, // -1
    { market: "points", odds: -105, outcome: "push" }, // 0
    { market: "assists", odds: 150, outcome: "void" }, // 0
  ]);
  // units = 0.909091 + 1.2 - 1 = 1.109091; staked (wins + losses) = 3 → roi 0.369697
  assert.deepEqual(score.overall, {
    picks: 5,
    wins: 2,
    losses: 1,
    pushes: 1,
    voids: 1,
    units: 1.1091,
    roi: 0.3697,
  });
  assert.deepEqual(Object.keys(score.byMarket), ["assists", "points", "threes"]);
  assert.deepEqual(score.byMarket.assists, {
    picks: 1,
    wins: 0,
    losses: 0,
    pushes: 0,
    voids: 1,
    units: 0,
    roi: 0,
  });
  assert.equal(score.byMarket.points.units, -0.0909);
  assert.equal(score.byMarket.points.roi, -0.0455);
  assert.deepEqual(scoreDay([]).overall, {
    picks: 0,
    wins: 0,
    losses: 0,
    pushes: 0,
    voids: 0,
    units: 0,
    roi: 0,
  });
});

Deno.test("isIsoDate() accepts calendar dates only", () => {
  assert.ok(isIsoDate("2026-01-15"));
  assert.ok(isIsoDate("2024-02-29"));
  assert.ok(!isIsoDate("2026-02-29"));
  assert.ok(!isIsoDate("2026-1-15"));
  assert.ok(!isIsoDate("../etc"));
  assert.ok(!isIsoDate(20260115));
});

function pointers(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 422);
    return (err.options.errors ?? []).map((e) => e.pointer);
  }
  assert.fail("expected a 422");
}

Deno.test("validateCommand() accepts each type and normalises picks", () => {
  assert.deepEqual(validateCommand({ type: "settle", params: { date: "2026-01-15" } }), {
    type: "settle",
    params: { date: "2026-01-15" },
  });
  const ingest = validateCommand({
    type: "ingest",
    params: {
      date: "2026-01-15",
      picks: [{ player: " A B ", market: "pra", line: 40.5, side: "under", odds: 110 }],
      results: [],
    },
  });
  assert.deepEqual(ingest.params.picks, [
    {
      player: "A B",
      team: null,
      opponent: null,
      market: "pra",
      line: 40.5,
      side: "under",
      odds: 110,
    },
  ]);
  assert.equal(
    validateCommand({ type: "score-day", params: { date: "2026-01-15" } }).type,
    "score-day",
  );
});

Deno.test("validateCommand() answers 422 with a pointer per invalid field", () => {
  assert.deepEqual(pointers(() => validateCommand({ type: "reboot", params: {} })), ["/type"]);
  assert.deepEqual(pointers(() => validateCommand([])), [""]);
  assert.deepEqual(pointers(() => validateCommand({ type: "settle" })), ["/params"]);
  assert.deepEqual(
    pointers(() => validateCommand({ type: "settle", params: { date: "2026-13-01", x: 1 } })),
    ["/params/x", "/params/date"],
  );
  assert.deepEqual(
    pointers(() =>
      validateCommand({
        type: "ingest",
        params: {
          date: "2026-01-15",
          picks: [
            { player: "", market: "dunks", line: -1, side: "both", odds: 50 },
            "nope",
          ],
          results: [
            { player: "A", market: "points", value: 3 },
            { player: "a", market: "points", value: 4 },
          ],
        },
      })
    ),
    [
      "/params/picks/0/player",
      "/params/picks/0/market",
      "/params/picks/0/line",
      "/params/picks/0/side",
      "/params/picks/0/odds",
      "/params/picks/1",
      "/params/results/1",
    ],
  );
  assert.deepEqual(
    pointers(() => validateCommand({ type: "ingest", params: { date: "2026-01-15", picks: {} } })),
    ["/params/picks"],
  );
});

Deno.test("backoffMs() doubles from the base up to the cap, with jitter in the upper half", () => {
  const b = { baseMs: 1000, maxMs: 5000 };
  assert.equal(backoffMs(1, b, 0), 500);
  assert.equal(backoffMs(1, b, 0.999999), 1000);
  assert.equal(backoffMs(2, b, 0), 1000);
  assert.equal(backoffMs(3, b, 1), 4000);
  assert.equal(backoffMs(10, b, 1), 5000);
  assert.ok(shouldRetry(1, 3, true));
  assert.ok(!shouldRetry(3, 3, true));
  assert.ok(!shouldRetry(1, 3, false));
});
