import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { queueJob, startTestWorker, waitForJob } from "./support/jobs.ts";
import { listPipelineRuns } from "../db/pipeline_runs.ts";

// Several OS processes share one PostgreSQL; PGlite is single-process by design.
const tdb = ON_POSTGRES ? await openTestDb() : null;
const SCRIPT = new URL("./support/worker_process.ts", import.meta.url).pathname;

interface WorkerProcess {
  child: Deno.ChildProcess;
  lines: string[];
  ready: Promise<void>;
}

function spawnWorker(env: Record<string, string>): WorkerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT],
    env: { DATABASE_URL: tdb!.url!, ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  let markReady!: () => void;
  const ready = new Promise<void>((r) => markReady = r);
  let buf = "";
  const dec = new TextDecoder();
  void child.stdout.pipeTo(
    new WritableStream({
      write(chunk) {
        buf += dec.decode(chunk, { stream: true });
        const parts = buf.split("\n");
        buf = parts.pop()!;
        for (const l of parts) {
          lines.push(l);
          if (l.startsWith("ready ")) markReady();
        }
      },
    }),
  ).catch(() => {});
  return { child, lines, ready };
}

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "two worker processes on one PostgreSQL run each job exactly once",
}, async () => {
  const db = tdb!.db;
  await tdb!.reset();
  const workers = [spawnWorker({ STEP_MS: "15" }), spawnWorker({ STEP_MS: "15" })];
  try {
    await Promise.all(workers.map((w) => w.ready));
    const ids = await db.transaction(async (tx) => {
      const out: string[] = [];
      for (let i = 0; i < 40; i++) {
        const id = crypto.randomUUID();
        await tx.query(
          `insert into jobs (id, type, params, created_by) values ($1, 'settle', $2::text::jsonb, 'ops:test')`,
          // A date each: one date's jobs run one at a time, in order (claimNextJob).
          [id, JSON.stringify({ date: `2025-12-${String(1 + (i % 28)).padStart(2, "0")}` })],
        );
        out.push(id);
      }
      await tx.query("select pg_notify('proplab_jobs', 'batch')");
      return out;
    });
    for (const id of ids) {
      const job = await waitForJob(db, id, undefined, 20_000);
      assert.equal(job.state, "succeeded");
      assert.equal(job.attempts, 1);
    }
    const runs = await listPipelineRuns(db, {}, { limit: 200, cursor: null });
    assert.equal(runs.length, 40, "one run per job");
    const ran = workers.map((w) => w.lines.filter((l) => l.startsWith("ran ")).length);
    assert.equal(ran[0] + ran[1], 40, `ran per process: ${ran}`);
    const all = workers.flatMap((w) => w.lines.filter((l) => l.startsWith("ran ")));
    assert.equal(new Set(all).size, 40, "no job ran twice");
    assert.ok(ran[0] > 0 && ran[1] > 0, `both processes took jobs: ${ran}`);
  } finally {
    for (const w of workers) {
      w.child.kill("SIGTERM");
      assert.equal((await w.child.status).code, 0);
    }
  }
});

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name:
    "after kill -9 of a worker mid-job, another worker reclaims the job once its heartbeat lapses",
}, async () => {
  const db = tdb!.db;
  await tdb!.reset();
  const doomed = spawnWorker({ STEP_MS: "60000", HEARTBEAT_MS: "50" });
  await doomed.ready;
  const queued = await queueJob(db, "settle", { date: "2025-12-25" });
  await waitForJob(db, queued.id, ["running"]);
  // Claimed, then its run recorded in a second statement: kill only once both happened.
  for (let i = 0; i < 500; i++) {
    if ((await listPipelineRuns(db, { jobId: queued.id }, { limit: 1, cursor: null })).length) {
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  doomed.child.kill("SIGKILL");
  assert.equal((await doomed.child.status).signal, "SIGKILL");
  const worker = startTestWorker(db, { staleMs: 400 });
  try {
    const job = await waitForJob(db, queued.id);
    assert.equal(job.state, "succeeded");
    assert.equal(job.attempts, 2);
    const runs = (await listPipelineRuns(db, { jobId: job.id }, { limit: 5, cursor: null }))
      .reverse();
    assert.deepEqual(runs.map((r) => [r.attempt, r.state, r.error]), [
      [1, "failed", "worker lost: heartbeat lapsed"],
      [2, "succeeded", null],
    ]);
  } finally {
    await worker.stop();
  }
});
