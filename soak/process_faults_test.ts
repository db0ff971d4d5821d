/**
 * Process faults: `kill -9` of a real `proplab serve` while a login, an API-key creation with
 * an Idempotency-Key and an ingest job are each mid-write, then a restart (SPEC §6, §8).
 * Each write is held at a known point by a table lock the test takes in PostgreSQL, so the
 * kill lands inside it every time, without test hooks in the server.
 */
import assert from "node:assert/strict";
import { ON_POSTGRES } from "../tests/support/db.ts";
import { DB_TEST } from "../tests/support/assert.ts";
import { type ServerProcess, spawnServer } from "../tests/support/process.ts";
import { createOpsToken, createUser } from "../tests/support/fixtures.ts";
import { type Db, openPostgres } from "../db/client.ts";
import {
  credentialsOf,
  login,
  NO_LIMITS,
  postJson,
  retryUntilFinal,
  scratchDatabase,
  setSettings,
  waitUntil,
} from "./support.ts";

const PICKS = [
  { player: "LeBron James", market: "points", line: 25.5, side: "over", odds: -110 },
  { player: "Stephen Curry", market: "threes", line: 4.5, side: "over", odds: 120 },
  { player: "Nikola Jokic", market: "rebounds", line: 12.5, side: "under", odds: -105 },
];

/** Holds SHARE locks (reads pass, writes wait) on `tables` until `release()`. */
async function holdWriteLocks(url: string, tables: string[]) {
  const db = openPostgres(url, { max: 1 });
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => locked = r);
  const done = db.transaction(async (tx) => {
    await tx.exec(`lock table ${tables.join(", ")} in share mode`);
    locked();
    await released;
  });
  await isLocked;
  return {
    async release() {
      release();
      await done;
      await db.close();
    },
  };
}

async function lockWaiters(db: Db): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`,
  );
  return rows[0].n;
}

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "kill -9 during a login, an idempotent API-key creation and a job: no half-written rows",
}, async () => {
  const { url, db } = await scratchDatabase();
  let second: ServerProcess | null = null;
  try {
    await setSettings(db, { ...NO_LIMITS, "idempotency.lockTimeoutSeconds": 2 });
    const user = await createUser(db, { tier: "sharp" });
    const ops = { authorization: `Bearer ${await createOpsToken(db, ["ops:commands"])}` };
    const first = await spawnServer({ DATABASE_URL: url, LOG_LEVEL: "warn" });
    const jwt = { authorization: `Bearer ${(await login(first.base, user)).accessToken}` };
    const createKey = (base: string) =>
      postJson(`${base}/api/v1/me/api-keys`, { name: "killed" }, jwt, "kill-9-key");

    const locks = await holdWriteLocks(url, ["refresh_tokens", "api_keys", "picks"]);
    const inflight = [
      postJson(`${first.base}/api/v1/auth/login`, credentialsOf(user), {}),
      createKey(first.base),
      postJson(`${first.base}/api/v1/ops/commands`, {
        type: "ingest",
        params: { date: "2026-02-01", picks: PICKS },
      }, ops),
    ].map((p) => p.then((r) => r.status, (e) => e));
    // All three writes (session insert, key insert in its transaction, ingest in its job
    // transaction) wait on the locks; the ingest's command was answered 202 already.
    await waitUntil("three writes waiting on the locks", async () => await lockWaiters(db) === 3);
    const job = (await db.query<{ id: string; state: string }>("select id, state from jobs"))[0];
    assert.equal(job.state, "running");
    assert.equal((await first.stop("SIGKILL")).signal, "SIGKILL");
    const killedAt = performance.now();
    const [loginAnswer, keyAnswer, commandAnswer] = await Promise.all(inflight);
    assert.ok(loginAnswer instanceof Error && keyAnswer instanceof Error, "cut off by the kill");
    assert.equal(commandAnswer, 202);
    await locks.release();

    second = await spawnServer({ DATABASE_URL: url, LOG_LEVEL: "warn" });
    // SPEC §6: the killed request's claim answers 409 + Retry-After until it goes stale.
    const busy = await createKey(second.base);
    assert.equal(busy.status, 409, await busy.text());
    assert.ok(Number(busy.headers.get("retry-after")) >= 1);
    const created = await retryUntilFinal(() => createKey(second!.base));
    const keyRetryMs = Math.round(performance.now() - killedAt);
    const createdText = await created.text();
    assert.equal(created.status, 201, createdText);
    assert.equal(created.headers.get("idempotent-replayed"), null, "the retry ran the effect");
    const replay = await createKey(second.base);
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.equal(await replay.text(), createdText);
    assert.equal((await login(second.base, user)).accessToken.split(".").length, 3);

    const keys = await db.query<{ n: number }>(
      "select count(*)::int as n from api_keys where user_id = $1",
      [user.id],
    );
    assert.equal(keys[0].n, 1, "one key: the killed attempt left none");
    const idem = await db.query<{ state: string }>("select state from idempotency_keys");
    assert.deepEqual(idem.map((r) => r.state), ["completed"], "the key has its stored answer");
    const halfSessions = await db.query<{ n: number }>(
      `select count(*)::int as n from sessions s
        where not exists (select 1 from refresh_tokens r where r.session_id = s.id)`,
    );
    assert.equal(halfSessions[0].n, 0, "no session without its refresh token");

    // The killed worker's job is reclaimed once its heartbeat lapses, and finishes once.
    await waitUntil("the job to be reclaimed and finish", async () => {
      const rows = await db.query<{ state: string }>("select state from jobs where id = $1", [
        job.id,
      ]);
      return rows[0].state !== "running" && rows[0].state !== "queued";
    }, 40_000);
    const [done] = await db.query<{ state: string; attempts: number; finished: boolean }>(
      "select state, attempts, finished_at is not null as finished from jobs where id = $1",
      [job.id],
    );
    assert.deepEqual(done, { state: "succeeded", attempts: 2, finished: true });
    const runs = await db.query<{ attempt: number; state: string; error: string | null }>(
      "select attempt, state, error from pipeline_runs where job_id = $1 order by attempt",
      [job.id],
    );
    assert.deepEqual(runs.map((r) => [r.attempt, r.state, r.error]), [
      [1, "failed", "worker lost: heartbeat lapsed"],
      [2, "succeeded", null],
    ]);
    const picks = await db.query<{ n: number }>(
      "select count(*)::int as n from picks where game_date = '2026-02-01'",
    );
    assert.equal(picks[0].n, PICKS.length, "the day's picks were written once");
    const jobMs = Math.round(performance.now() - killedAt);
    console.log(`after kill -9: key retry ran ${keyRetryMs} ms, job finished ${jobMs} ms later`);
  } finally {
    await second?.stop();
    await db.close();
  }
});
