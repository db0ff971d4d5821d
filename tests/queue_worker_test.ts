import assert from "node:assert/strict";
import { createScratchDatabase, ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { startCutProxy } from "./support/proxy.ts";
import { deferred, memoryLogger, queueJob, startTestWorker, waitForJob } from "./support/jobs.ts";
import { openPostgres } from "../db/client.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";
import { cancelJob, claimNextJob, finishJob, lockJobLease } from "../db/jobs.ts";
import { insertPipelineRun, listPipelineRuns } from "../db/pipeline_runs.ts";
import { JobError, type JobHandler } from "../worker/job.ts";

const tdb = await openTestDb();
const db = tdb.db;
const PARAMS = { date: "2026-01-15" };

const runsOf = async (jobId: string) =>
  (await listPipelineRuns(db, { jobId }, { limit: 20, cursor: null })).reverse();

const noop = (name: string) => () => Promise.resolve({ rows: 0, value: name });

Deno.test(
  { ...DB_TEST, name: "a failing job is retried with backoff until it succeeds" },
  async () => {
    await tdb.reset();
    let calls = 0;
    const flaky: JobHandler = async (ctx) => {
      await ctx.step("work", noop("work"));
      if (++calls < 3) throw new Error(`boom ${calls} with a secret detail`);
      return { calls };
    };
    const log = memoryLogger();
    const worker = startTestWorker(db, {
      handlers: { settle: flaky },
      backoff: { baseMs: 100, maxMs: 1000 },
    }, log);
    try {
      const job = await waitForJob(db, (await queueJob(db, "settle", PARAMS)).id);
      assert.equal(job.state, "succeeded");
      assert.equal(job.attempts, 3);
      // Logged just after the commit that waitForJob saw (on PostgreSQL, maybe a tick later).
      const succeededLines = () =>
        log.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "job succeeded");
      for (let i = 0; i < 50 && succeededLines().length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const succeeded = succeededLines();
      assert.deepEqual(succeeded.map((l) => [l.jobId, l.type, l.attempt]), [
        [job.id, "settle", 3],
      ]);
      assert.deepEqual(job.result, { calls: 3 });
      const runs = await runsOf(job.id);
      assert.deepEqual(runs.map((r) => [r.attempt, r.state]), [
        [1, "failed"],
        [2, "failed"],
        [3, "succeeded"],
      ]);
      assert.match(runs[0].error ?? "", /^internal error in the settle handler/);
      assert.ok(!JSON.stringify(runs).includes("secret detail"), "raw errors stay in the log");
      // Backoff with equal jitter: attempt 1 waits 50–100 ms, attempt 2 waits 100–200 ms.
      const gap = (a: number) =>
        Date.parse(runs[a + 1].startedAt) - Date.parse(runs[a].finishedAt!);
      assert.ok(gap(0) >= 45, `first retry after ${gap(0)} ms`);
      assert.ok(gap(1) >= 95, `second retry after ${gap(1)} ms`);
    } finally {
      await worker.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "a job fails for good after max attempts; bad input fails at once" },
  async () => {
    await tdb.reset();
    const worker = startTestWorker(db, {
      handlers: {
        settle: () => Promise.reject(new JobError("upstream feed timed out", true)),
        "score-day": () => Promise.reject(new JobError("bad input")),
      },
    });
    try {
      const job = await waitForJob(db, (await queueJob(db, "settle", PARAMS)).id);
      assert.equal(job.state, "failed");
      assert.equal(job.attempts, 3);
      assert.equal(job.error, "upstream feed timed out");
      assert.ok(job.finishedAt);
      const once = await waitForJob(db, (await queueJob(db, "score-day", PARAMS)).id);
      assert.equal(once.state, "failed");
      assert.equal(once.attempts, 1);
    } finally {
      await worker.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "a job whose worker died is reclaimed after its heartbeat lapses" },
  async () => {
    await tdb.reset();
    const queued = await queueJob(db, "settle", { date: "2025-12-25" });
    const dead = await claimNextJob(db, "worker:dead");
    assert.equal(dead?.id, queued.id);
    const deadRun = crypto.randomUUID();
    await insertPipelineRun(db, { id: deadRun, jobId: queued.id, type: "settle", attempt: 1 });
    const worker = startTestWorker(db, { staleMs: 300 });
    try {
      const job = await waitForJob(db, queued.id);
      assert.equal(job.state, "succeeded");
      assert.equal(job.attempts, 2);
      const runs = await runsOf(job.id);
      assert.deepEqual(runs.map((r) => [r.attempt, r.state]), [[1, "failed"], [2, "succeeded"]]);
      assert.equal(runs[0].error, "worker lost: heartbeat lapsed");
      // The dead worker's lease is fenced off: it can neither finish the job nor commit data.
      const lease = { jobId: queued.id, workerId: "worker:dead", attempt: 1 };
      assert.equal(await finishJob(db, lease, { state: "failed", error: "late" }), false);
      assert.equal(await db.transaction((tx) => lockJobLease(tx, lease)), false);
    } finally {
      await worker.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "a running job is cancelled at its next step boundary" },
  async () => {
    await tdb.reset();
    const gate = deferred();
    const entered = deferred();
    let secondRan = false;
    const twoSteps: JobHandler = async (ctx) => {
      await ctx.step("first", async () => {
        entered.resolve();
        await gate.promise;
        return { rows: 1, value: null };
      });
      await ctx.step("second", () => {
        secondRan = true;
        return Promise.resolve({ rows: 1, value: null });
      });
      return null;
    };
    const worker = startTestWorker(db, { handlers: { settle: twoSteps } });
    try {
      const queued = await queueJob(db, "settle", PARAMS);
      await entered.promise;
      const flagged = await cancelJob(db, queued.id);
      assert.equal(flagged?.state, "running", "a running job keeps running until its step ends");
      gate.resolve();
      const job = await waitForJob(db, queued.id);
      assert.equal(job.state, "cancelled");
      assert.equal(job.error, "cancelled by request");
      assert.equal(secondRan, false);
      const [run] = await runsOf(job.id);
      assert.equal(run.state, "cancelled");
      assert.deepEqual(run.steps.map((s) => s.name), ["first"]);
    } finally {
      await worker.stop();
    }
  },
);

Deno.test({
  ...DB_TEST,
  name: "stop() finishes the running step and puts the job back in the queue",
}, async () => {
  await tdb.reset();
  const gate = deferred();
  const entered = deferred();
  const slow: JobHandler = async (ctx) => {
    await ctx.step("first", async () => {
      entered.resolve();
      await gate.promise;
      return { rows: 1, value: null };
    });
    await ctx.step("second", noop("second"));
    return null;
  };
  const first = startTestWorker(db, { handlers: { settle: slow } });
  const queued = await queueJob(db, "settle", { date: "2025-12-25" });
  await entered.promise;
  const stopped = first.stop();
  gate.resolve();
  await stopped;
  const requeued = await waitForJob(db, queued.id, ["queued"]);
  assert.equal(requeued.attempts, 0, "an interrupted attempt is not spent");
  const [run] = await runsOf(queued.id);
  assert.equal(run.state, "cancelled");
  assert.deepEqual(run.steps.map((s) => s.name), ["first"]);
  const second = startTestWorker(db);
  try {
    const job = await waitForJob(db, queued.id);
    assert.equal(job.state, "succeeded");
    assert.equal(job.attempts, 1);
  } finally {
    await second.stop();
  }
});

// PGlite lives inside the process and cannot go away; PostgreSQL can.
Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "the worker survives a database outage: logs once, backs off, resumes",
}, async () => {
  const url = new URL(await createScratchDatabase());
  const proxy = startCutProxy({ hostname: url.hostname, port: Number(url.port) });
  const direct = openPostgres(url.toString(), { max: 2 });
  url.port = String(proxy.port);
  const viaProxy = openPostgres(url.toString(), { max: 2 });
  await migrate(direct, await loadMigrations());
  const log = memoryLogger();
  const worker = startTestWorker(viaProxy, { pollMs: 20, maxOutageBackoffMs: 100 }, log);
  try {
    proxy.down();
    await new Promise((r) => setTimeout(r, 600));
    const warned = log.lines.filter((l) => l.includes("database unavailable")).length;
    assert.equal(warned, 1, log.lines.join("\n"));
    assert.equal(worker.status().state, "backing-off");
    const queued = await queueJob(direct, "settle", { date: "2025-12-25" });
    proxy.up();
    const job = await waitForJob(direct, queued.id);
    assert.equal(job.state, "succeeded");
    assert.ok(log.lines.some((l) => l.includes("database reachable again")));
  } finally {
    await worker.stop();
    proxy.close();
    await viaProxy.close();
    await direct.close();
  }
});

Deno.test(
  { ...DB_TEST, name: "claimNextJob() runs one date's jobs in queue order, other dates alongside" },
  async () => {
    await tdb.reset();
    const day = { date: "2026-01-15" };
    const ingest = await queueJob(db, "ingest", day);
    const settle = await queueJob(db, "settle", day);
    const other = await queueJob(db, "ingest", { date: "2026-01-16" });
    const a = await claimNextJob(db, "worker:a");
    assert.equal(a?.id, ingest.id);
    const b = await claimNextJob(db, "worker:b");
    assert.equal(b?.id, other.id, "another date is not held up");
    assert.equal(await claimNextJob(db, "worker:c"), null, "settle waits for its ingest");
    const lease = { jobId: a!.id, workerId: "worker:a", attempt: a!.attempts };
    assert.ok(await finishJob(db, lease, { state: "succeeded" }));
    const c = await claimNextJob(db, "worker:c");
    assert.equal(c?.id, settle.id, "then it runs");
  },
);

Deno.test(
  { ...DB_TEST, name: "claimNextJob(): jobs queued in the same millisecond keep their order" },
  async () => {
    await tdb.reset();
    const day = { date: "2026-01-17" };
    const ingest = await queueJob(db, "ingest", day);
    const settle = await queueJob(db, "settle", day);
    // The same instant for both (PGlite's clock counts milliseconds), and the later job the
    // smaller id: neither time nor id may decide which was queued first.
    await db.query(
      `update jobs set created_at = '2026-01-17T00:00:00Z', run_after = '2026-01-17T00:00:00Z',
              id = case when id = $1::uuid then '00000000-0000-4000-8000-000000000000'::uuid
                        else id end`,
      [settle.id],
    );
    const first = await claimNextJob(db, "worker:a");
    assert.equal(first?.id, ingest.id);
    assert.equal(await claimNextJob(db, "worker:b"), null, "settle waits for its ingest");
  },
);

Deno.test(
  { ...DB_TEST, name: "claimNextJob(): concurrent claimers never run two jobs of one date" },
  async () => {
    await tdb.reset();
    for (let i = 0; i < 6; i++) await queueJob(db, i % 2 ? "settle" : "ingest", PARAMS);
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, i) => claimNextJob(db, `worker:${i}`)),
    );
    assert.equal(claims.filter((c) => c !== null).length, 1);
  },
);
