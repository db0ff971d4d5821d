import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { queueJob, startTestWorker, waitForJob } from "./support/jobs.ts";
import { listPipelineRuns } from "../db/pipeline_runs.ts";

const tdb = await openTestDb();
const db = tdb.db;
const DAY = "2026-01-15";

async function run(type: string, params: Record<string, unknown>) {
  const job = await queueJob(db, type, params);
  return await waitForJob(db, job.id);
}

async function withWorker(fn: () => Promise<void>) {
  await tdb.reset();
  const worker = startTestWorker(db);
  try {
    await fn();
  } finally {
    await worker.stop();
  }
}

async function picksOf(date: string) {
  return await db.query<{ player: string; outcome: string | null; actual: number | null }>(
    `select player, outcome, actual::float8 as actual from picks
      where game_date = $1::date order by player`,
    [date],
  );
}

Deno.test({
  ...DB_TEST,
  name: "ingest → settle → score-day on the fixture day gives the hand-computed score",
}, async () => {
  await withWorker(async () => {
    const ingested = await run("ingest", { date: DAY });
    assert.equal(ingested.state, "succeeded", ingested.error ?? "");
    assert.deepEqual(ingested.result, {
      date: DAY,
      picks: 7,
      results: 7,
      sources: { picks: "file", results: "file" },
    });

    const settled = await run("settle", { date: DAY });
    assert.equal(settled.state, "succeeded", settled.error ?? "");
    assert.deepEqual(settled.result, { date: DAY, picks: 7, win: 3, loss: 2, push: 1, void: 1 });
    assert.deepEqual(
      (await picksOf(DAY)).map((p) => [p.player, p.outcome, p.actual]),
      [
        ["Anthony Edwards", "loss", 30], // under 26.5 at +105
        ["Giannis Antetokounmpo", "win", 48], // under 50.5 at -130
        ["Jayson Tatum", "push", 27], // over 27, exactly 27
        ["LeBron James", "win", 28], // over 25.5 at -110; result spelt "lebron james"
        ["Luka Doncic", "void", null], // no assists result (a points one must not match)
        ["Nikola Jokic", "loss", 14], // under 12.5 at -120
        ["Stephen Curry", "win", 6], // over 4.5 at +120
      ],
    );

    const scored = await run("score-day", { date: DAY });
    assert.equal(scored.state, "succeeded", scored.error ?? "");
    // units = 100/110 + 1.2 + 100/130 - 1 - 1 = 0.878322; staked = 3 wins + 2 losses
    // roi = 0.878322 / 5 = 0.175664
    const overall = {
      picks: 7,
      wins: 3,
      losses: 2,
      pushes: 1,
      voids: 1,
      units: 0.8783,
      roi: 0.1757,
    };
    const byMarket = {
      assists: { picks: 1, wins: 0, losses: 0, pushes: 0, voids: 1, units: 0, roi: 0 },
      // 100/110 - 1 + 0 = -0.090909 over 2 staked
      points: { picks: 3, wins: 1, losses: 1, pushes: 1, voids: 0, units: -0.0909, roi: -0.0455 },
      pra: { picks: 1, wins: 1, losses: 0, pushes: 0, voids: 0, units: 0.7692, roi: 0.7692 },
      rebounds: { picks: 1, wins: 0, losses: 1, pushes: 0, voids: 0, units: -1, roi: -1 },
      threes: { picks: 1, wins: 1, losses: 0, pushes: 0, voids: 0, units: 1.2, roi: 1.2 },
    };
    assert.deepEqual(scored.result, { date: DAY, overall, byMarket });
    const [row] = await db.query<Record<string, unknown>>(
      `select wins, losses, pushes, voids, units::float8 as units, roi::float8 as roi, by_market
         from scores where game_date = $1::date`,
      [DAY],
    );
    assert.deepEqual(row, {
      wins: 3,
      losses: 2,
      pushes: 1,
      voids: 1,
      units: 0.8783,
      roi: 0.1757,
      by_market: byMarket,
    });
    const fresh = await db.query<{ dataset: string; row_count: number }>(
      "select dataset, row_count from dataset_freshness order by dataset",
    );
    assert.deepEqual([...fresh], [{ dataset: "picks", row_count: 7 }, {
      dataset: "results",
      row_count: 7,
    }]);
  });
});

Deno.test({
  ...DB_TEST,
  name: "each handler records a pipeline run with named steps, timings and rows",
}, async () => {
  await withWorker(async () => {
    const job = await run("ingest", { date: DAY });
    const [runRow] = await listPipelineRuns(db, { jobId: job.id }, { limit: 5, cursor: null });
    assert.equal(runRow.state, "succeeded");
    assert.equal(runRow.attempt, 1);
    assert.deepEqual(runRow.steps.map((s) => [s.name, s.rows]), [["read", 14], ["store", 14]]);
    for (const s of runRow.steps) {
      assert.ok(s.durationMs >= 0);
      assert.ok(Date.parse(s.finishedAt) >= Date.parse(s.startedAt));
    }
    const settled = await run("settle", { date: DAY });
    const [settleRun] = await listPipelineRuns(db, { jobId: settled.id }, {
      limit: 5,
      cursor: null,
    });
    assert.deepEqual(settleRun.steps.map((s) => [s.name, s.rows]), [["load", 14], ["grade", 7], [
      "store",
      7,
    ]]);
  });
});

Deno.test({
  ...DB_TEST,
  name: "ingest with inline params replaces the day and drops its old score",
}, async () => {
  await withWorker(async () => {
    await run("ingest", { date: DAY });
    await run("settle", { date: DAY });
    await run("score-day", { date: DAY });
    const job = await run("ingest", {
      date: DAY,
      picks: [{
        player: "Only One",
        team: null,
        opponent: null,
        market: "points",
        line: 10.5,
        side: "over",
        odds: 100,
      }],
    });
    assert.equal(job.state, "succeeded", job.error ?? "");
    assert.deepEqual(job.result, {
      date: DAY,
      picks: 1,
      results: 7,
      sources: { picks: "params", results: "file" },
    });
    assert.deepEqual((await picksOf(DAY)).map((p) => [p.player, p.outcome]), [["Only One", null]]);
    assert.equal(
      (await db.query("select 1 from scores where game_date = $1::date", [DAY])).length,
      0,
    );
  });
});

Deno.test(
  { ...DB_TEST, name: "ingest of an invalid day fails clearly and writes nothing" },
  async () => {
    await withWorker(async () => {
      await run("ingest", { date: DAY });
      await run("ingest", { date: "2026-01-16", picks: [] }); // the day exists, empty
      const before = await db.query("select count(*)::int as n from picks");
      const bad = await run("ingest", { date: "2026-01-16" });
      assert.equal(bad.state, "failed");
      assert.equal(bad.attempts, 1, "bad input is not retried");
      assert.match(bad.error ?? "", /picks\.json\/1\/odds: must be whole American odds/);
      assert.deepEqual([...await db.query("select count(*)::int as n from picks")], [...before]);
      const missing = await run("ingest", { date: "2026-03-01" });
      assert.equal(missing.state, "failed");
      assert.match(missing.error ?? "", /Nothing to ingest for 2026-03-01/);
    });
  },
);

Deno.test({
  ...DB_TEST,
  name: "settle refuses a day without results; score-day refuses an unsettled day",
}, async () => {
  await withWorker(async () => {
    await run("ingest", { date: DAY, results: [] });
    await db.query("delete from results");
    const settle = await run("settle", { date: DAY });
    assert.equal(settle.state, "failed");
    assert.match(settle.error ?? "", /No results are ingested for 2026-01-15/);
    const score = await run("score-day", { date: DAY });
    assert.equal(score.state, "failed");
    assert.match(score.error ?? "", /7 picks of 2026-01-15 are not settled/);
    const empty = await run("settle", { date: "2025-12-25" });
    assert.equal(empty.state, "succeeded");
    assert.deepEqual(empty.result, {
      date: "2025-12-25",
      picks: 0,
      win: 0,
      loss: 0,
      push: 0,
      void: 0,
    });
  });
});
