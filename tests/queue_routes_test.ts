import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { deferred, queueJob, startTestWorker, waitForJob } from "./support/jobs.ts";
import { claimNextJob, finishJob, type Job } from "../db/jobs.ts";
import type { Scope } from "../lib/policy.ts";
import { accessTokenFor, createOpsToken, createUser } from "./support/fixtures.ts";
import type { JobHandler } from "../worker/job.ts";

const tdb = await openTestDb();
const db = tdb.db;

// Real credentials, made fresh after every reset: ops tokens with the named scopes, and
// access tokens of an admin and a sharp user.
const AS: Record<string, Record<string, string>> = {};
let OPS: Record<string, string> = {};
let ADMIN: Record<string, string> = {};
let OPS_SUBJECT = "";

async function useRealCredentials(s: TestServer): Promise<void> {
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const scoped = async (scopes: Scope[]) => bearer(await createOpsToken(db, scopes));
  AS["opsToken ops:read,ops:commands"] = await scoped(["ops:read", "ops:commands"]);
  AS["opsToken ops:read"] = await scoped(["ops:read"]);
  AS["opsToken ops:commands"] = await scoped(["ops:commands"]);
  AS["jwt admin"] = bearer(await accessTokenFor(s, await createUser(db, { tier: "admin" })));
  AS["jwt sharp"] = bearer(await accessTokenFor(s, await createUser(db, { tier: "sharp" })));
  OPS = AS["opsToken ops:read,ops:commands"];
  ADMIN = AS["jwt admin"];
  const [tok] = await db.query<{ id: string }>(
    "select id from ops_tokens order by created_at limit 1",
  );
  OPS_SUBJECT = `ops:${tok.id}`;
}

async function withServer(fn: (s: TestServer) => Promise<void>) {
  await tdb.reset();
  const server = await startTestServer(db, { WORKER: "off" });
  await useRealCredentials(server);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

function post(s: TestServer, path: string, body: unknown, headers: Record<string, string> = OPS) {
  return fetch(s.url(path), {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

const get = (s: TestServer, path: string, headers: Record<string, string> = OPS) =>
  fetch(s.url(path), { headers });

Deno.test(
  { ...DB_TEST, name: "POST /api/v1/ops/commands answers 202 with the job and Location" },
  async () => {
    await withServer(async (s) => {
      const res = await post(s, "/api/v1/ops/commands", {
        type: "settle",
        params: { date: "2026-01-15" },
      });
      assert.equal(res.status, 202);
      const job = await res.json();
      assert.equal(res.headers.get("location"), `/api/v1/ops/jobs/${job.id}`);
      assert.deepEqual(Object.keys(job).sort(), [
        "attempts",
        "createdAt",
        "error",
        "finishedAt",
        "id",
        "params",
        "result",
        "startedAt",
        "state",
        "type",
      ]);
      assert.equal(job.state, "queued");
      assert.equal(job.attempts, 0);
      assert.deepEqual(job.params, { date: "2026-01-15" });
      assert.match(job.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const [row] = await db.query<{ created_by: string }>(
        "select created_by from jobs where id = $1",
        [job.id],
      );
      assert.equal(row.created_by, OPS_SUBJECT);
      const viaJwt = await post(s, "/api/v1/ops/commands", {
        type: "score-day",
        params: { date: "2026-01-15" },
      }, ADMIN);
      assert.equal(viaJwt.status, 202);
      await viaJwt.body?.cancel();
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "POST /api/v1/ops/commands answers 422, 400, 415, 401 and 403" },
  async (t) => {
    await withServer(async (s) => {
      const path = "/api/v1/ops/commands";
      await t.step("422 for an unknown type", async () => {
        const body = await assertProblem(
          await post(s, path, { type: "reboot", params: {} }),
          422,
          "validation-failed",
        );
        assert.deepEqual((body.errors as { pointer: string }[]).map((e) => e.pointer), ["/type"]);
      });
      await t.step("422 for invalid params, with pointers", async () => {
        const body = await assertProblem(
          await post(s, path, {
            type: "ingest",
            params: {
              date: "2026-02-30",
              picks: [{ player: "A", market: "points", line: 1.5, side: "over", odds: -99 }],
            },
          }),
          422,
          "validation-failed",
        );
        assert.deepEqual((body.errors as { pointer: string }[]).map((e) => e.pointer), [
          "/params/date",
          "/params/picks/0/odds",
        ]);
      });
      await t.step("400 for malformed JSON", async () => {
        await assertProblem(await post(s, path, "{"), 400, "malformed-json");
      });
      await t.step("415 for a non-JSON body", async () => {
        const res = await fetch(s.url(path), { method: "POST", headers: OPS, body: "x" });
        await assertProblem(res, 415, "unsupported-media-type");
      });
      await t.step("401 without a credential", async () => {
        await assertProblem(await post(s, path, {}, {}), 401, "unauthorized");
      });
      await t.step("403 for an ops token without ops:commands", async () => {
        const res = await post(s, path, {}, AS["opsToken ops:read"]);
        await assertProblem(res, 403, "forbidden");
      });
      await t.step("403 for a sharp user's JWT", async () => {
        const res = await post(s, path, {}, AS["jwt sharp"]);
        await assertProblem(res, 403, "forbidden");
      });
      assert.equal((await db.query("select 1 from jobs")).length, 0, "nothing was queued");
    });
  },
);

Deno.test({
  ...DB_TEST,
  name: "GET /api/v1/ops/jobs/{id} answers 200, 404, and 403 without ops:read",
}, async () => {
  await withServer(async (s) => {
    const job = await queueJob(db, "settle", { date: "2026-01-15" });
    const res = await get(s, `/api/v1/ops/jobs/${job.id}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), job);
    await assertProblem(await get(s, `/api/v1/ops/jobs/${crypto.randomUUID()}`), 404, "not-found");
    await assertProblem(await get(s, "/api/v1/ops/jobs/not-a-uuid"), 404, "not-found");
    const res403 = await get(s, `/api/v1/ops/jobs/${job.id}`, {
      ...AS["opsToken ops:commands"],
    });
    await assertProblem(res403, 403, "forbidden");
  });
});

Deno.test({
  ...DB_TEST,
  name: "GET /api/v1/ops/jobs filters by state and type and pages newest first",
}, async (t) => {
  await withServer(async (s) => {
    const made: Job[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(await queueJob(db, i % 2 ? "settle" : "ingest", { date: `2026-01-0${i + 1}` }));
      // Distinct creation times, so "newest first" is the insertion order reversed.
      await db.query(
        "update jobs set created_at = '2026-01-01T00:00:00Z'::timestamptz + $2::int * interval '1 minute' where id = $1",
        [made[i].id, i],
      );
    }
    await db.query("update jobs set state = 'failed' where id = $1", [made[4].id]);
    const newestFirst = made.map((j) => j.id).reverse();
    await t.step("pages of 2 with nextCursor until the end", async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q: string = cursor ? `&cursor=${cursor}` : "";
        const res = await get(s, `/api/v1/ops/jobs?limit=2${q}`);
        assert.equal(res.status, 200);
        const page: { items: { id: string }[]; nextCursor: string | null } = await res.json();
        seen.push(...page.items.map((j) => j.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual(seen, newestFirst);
    });
    await t.step("state and type filters", async () => {
      const byType = await (await get(s, "/api/v1/ops/jobs?type=settle")).json();
      assert.deepEqual(byType.items.map((j: { id: string }) => j.id), [made[3].id, made[1].id]);
      const failed = await (await get(s, "/api/v1/ops/jobs?state=failed&type=ingest")).json();
      assert.deepEqual(failed.items.map((j: { id: string }) => j.id), [made[4].id]);
      assert.equal(failed.nextCursor, null);
    });
    await t.step("422 for an unknown state, 400 for a bad cursor", async () => {
      const body = await assertProblem(
        await get(s, "/api/v1/ops/jobs?state=done"),
        422,
        "validation-failed",
      );
      assert.deepEqual(body.errors, [{
        pointer: "/state",
        detail: "state must be one of queued, running, succeeded, failed, cancelled",
      }]);
      await assertProblem(await get(s, "/api/v1/ops/jobs?cursor=zzz"), 400, "bad-request");
    });
  });
});

Deno.test(
  { ...DB_TEST, name: "POST /api/v1/ops/commands/{id}/cancel in each state" },
  async (t) => {
    await withServer(async (s) => {
      const cancel = (id: string) => post(s, `/api/v1/ops/commands/${id}/cancel`, {});
      await t.step("queued → 200, cancelled at once", async () => {
        const job = await queueJob(db, "settle", { date: "2026-01-15" });
        const res = await cancel(job.id);
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.state, "cancelled");
        assert.ok(body.finishedAt);
        assert.equal(await claimNextJob(db, "worker:test"), null, "never claimed");
      });
      await t.step("running → 202, cancelled at the next step boundary", async () => {
        const gate = deferred();
        const entered = deferred();
        const handler: JobHandler = async (ctx) => {
          await ctx.step("wait", async () => {
            entered.resolve();
            await gate.promise;
            return { rows: 0, value: null };
          });
          await ctx.step("never", () => Promise.resolve({ rows: 0, value: null }));
          return null;
        };
        const worker = startTestWorker(db, { handlers: { settle: handler } });
        try {
          const job = await queueJob(db, "settle", { date: "2026-01-15" });
          await entered.promise;
          const res = await cancel(job.id);
          assert.equal(res.status, 202);
          assert.equal((await res.json()).state, "running");
          gate.resolve();
          assert.equal((await waitForJob(db, job.id)).state, "cancelled");
        } finally {
          await worker.stop();
        }
      });
      await t.step("finished → 409", async () => {
        const job = await queueJob(db, "settle", { date: "2026-01-15" });
        const claimed = await claimNextJob(db, "worker:test");
        assert.equal(claimed?.id, job.id);
        await finishJob(db, { jobId: job.id, workerId: "worker:test", attempt: 1 }, {
          state: "succeeded",
          result: {},
        });
        await assertProblem(await cancel(job.id), 409, "conflict");
      });
      await t.step("already cancelled → 409; unknown → 404", async () => {
        const job = await queueJob(db, "settle", { date: "2026-01-15" });
        await (await cancel(job.id)).body?.cancel();
        await assertProblem(await cancel(job.id), 409, "conflict");
        await assertProblem(await cancel(crypto.randomUUID()), 404, "not-found");
      });
      await t.step("403 without ops:commands", async () => {
        const job = await queueJob(db, "settle", { date: "2026-01-15" });
        const res = await post(s, `/api/v1/ops/commands/${job.id}/cancel`, {}, {
          ...AS["opsToken ops:read"],
        });
        await assertProblem(res, 403, "forbidden");
      });
    });
  },
);

Deno.test({
  ...DB_TEST,
  name:
    "queued commands run on the server's worker; GET /api/v1/ops/pipeline-runs lists their runs",
}, async () => {
  await tdb.reset();
  const server = await startTestServer(db, {
    INGEST_DIR: new URL("./fixtures/ingest", import.meta.url).pathname,
  });
  await useRealCredentials(server);
  try {
    assert.ok(server.running.worker, "WORKER defaults to on");
    const ids: string[] = [];
    for (const type of ["ingest", "settle", "score-day"]) {
      const res = await post(server, "/api/v1/ops/commands", {
        type,
        params: { date: "2026-01-15" },
      });
      const job = await res.json();
      const done = await waitForJob(db, job.id);
      assert.equal(done.state, "succeeded", done.error ?? "");
      ids.push(job.id);
    }
    const res = await get(server, "/api/v1/ops/pipeline-runs?limit=2");
    assert.equal(res.status, 200);
    const page = await res.json();
    assert.deepEqual(page.items.map((r: { jobId: string }) => r.jobId), [ids[2], ids[1]]);
    assert.equal(page.items[0].type, "score-day");
    assert.deepEqual(page.items[0].steps.map((st: { name: string }) => st.name), [
      "load",
      "score",
      "store",
    ]);
    const next = await (await get(server, `/api/v1/ops/pipeline-runs?cursor=${page.nextCursor}`))
      .json();
    assert.deepEqual(next.items.map((r: { jobId: string }) => r.jobId), [ids[0]]);
    const one = await (await get(server, `/api/v1/ops/pipeline-runs?jobId=${ids[0]}`)).json();
    assert.equal(one.items.length, 1);
    await assertProblem(
      await get(server, "/api/v1/ops/pipeline-runs?jobId=x"),
      422,
      "validation-failed",
    );
    const job = await (await get(server, `/api/v1/ops/jobs/${ids[2]}`)).json();
    assert.equal(job.result.overall.units, 0.8783);
    assert.equal(server.running.deps.worker?.status().succeeded, 3);
  } finally {
    await server.stop();
  }
});
