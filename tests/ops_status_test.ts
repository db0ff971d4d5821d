import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { ADMIN, opsToken, SHARP_KEY, useTestAuth } from "./support/principal.ts";
import { insertJobRow, upsertFreshnessRow } from "./support/data_fixtures.ts";
import { ROUTES } from "../routes/mod.ts";
import { startHeartbeat, upsertInstance } from "../db/instances.ts";
import { createLogger } from "../lib/log.ts";
import { upsertSetting } from "../db/settings.ts";
import type { Route } from "../routes/context.ts";

const tdb = await openTestDb();
const NOW = Date.parse("2026-03-02T12:00:00Z");

// A route that fails the way a bug would, with a secret in its error message.
const boom: Route = {
  method: "POST",
  path: "/test/boom/:id",
  auth: [],
  summary: "boom",
  handler: () => {
    throw new Error("password=hunter2 leaked into an exception");
  },
};

async function withServer(
  fn: (s: TestServer, clock: { t: number }) => Promise<void>,
  env: Record<string, string> = { WORKER: "off" },
): Promise<void> {
  const clock = { t: NOW };
  const server = useTestAuth(
    await startTestServer(tdb.db, env, () => clock.t, [...ROUTES, boom]),
  );
  try {
    await fn(server, clock);
  } finally {
    await server.stop();
    await tdb.reset();
  }
}

const get = (s: TestServer, path: string, headers: Record<string, string> = ADMIN) =>
  fetch(s.url(path), { headers });

const OPS_READ_PATHS = ["/ops/health", "/ops/services", "/ops/errors", "/ops/freshness"].map(
  (p) => `/api/v1${p}`,
);

Deno.test({ ...DB_TEST, name: "ops read endpoints check credential kind and scope" }, async (t) => {
  await withServer(async (s) => {
    for (const path of OPS_READ_PATHS) {
      await t.step(`GET ${path} answers 401 without a credential`, async () => {
        await assertProblem(await fetch(s.url(path)), 401, "unauthorized");
      });
      await t.step(`GET ${path} answers 403 for an ops token without ops:read`, async () => {
        await assertProblem(await get(s, path, opsToken("ops:config")), 403, "forbidden");
      });
      await t.step(`GET ${path} answers 403 for a sharp API key`, async () => {
        await assertProblem(await get(s, path, SHARP_KEY), 403, "forbidden");
      });
      await t.step(`GET ${path} answers 200 for an ops token with ops:read`, async () => {
        const res = await get(s, path, opsToken("ops:read"));
        assert.equal(res.status, 200);
        await res.body?.cancel();
      });
    }
  });
});

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/ops/health answers database, queue depth, worker, uptime" },
  async () => {
    await withServer(async (s, clock) => {
      await insertJobRow(tdb.db, "queued");
      await insertJobRow(tdb.db, "queued");
      await insertJobRow(tdb.db, "running");
      await insertJobRow(tdb.db, "failed", { error: "boom" });
      clock.t = NOW + 10_500; // within the stale window of the last heartbeat
      const res = await get(s, "/api/v1/ops/health");
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.status, "ok");
      assert.equal(body.version, s.running.deps.version);
      assert.equal(body.uptimeSeconds, 10);
      assert.equal(body.database.status, "up");
      assert.equal(body.database.kind, tdb.db.kind);
      assert.deepEqual(body.queue, { depth: 2, running: 1 });
      // WORKER=off here, so the queued rows stay queued while the test reads them.
      assert.deepEqual(body.worker, { state: "disabled", here: null, liveWorkers: 0 });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/ops/health reports this instance's running worker" },
  async () => {
    await withServer(async (s) => {
      const body = await (await get(s, "/api/v1/ops/health")).json();
      assert.ok(["idle", "running"].includes(body.worker.state), body.worker.state);
      assert.equal(typeof body.worker.here.workerId, "string");
      assert.equal(body.worker.liveWorkers, 1);
    }, {});
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/ops/services marks an instance without heartbeats stale" },
  async () => {
    await withServer(async (s) => {
      const staleId = crypto.randomUUID();
      await upsertInstance(tdb.db, {
        id: staleId,
        role: "api",
        version: "0.0.9",
        hostname: "old-host",
        pid: 42,
        startedAt: new Date(NOW - 3_600_000),
        heartbeatAt: new Date(NOW - 60_000),
      });
      const body = await (await get(s, "/api/v1/ops/services")).json();
      assert.equal(body.items.length, 2);
      const self = body.items.find((i: { self: boolean }) => i.self);
      assert.equal(self.id, s.running.deps.instanceId);
      assert.equal(self.role, "api"); // WORKER=off in withServer by default
      assert.equal(self.stale, false);
      assert.equal(self.startedAt, new Date(NOW).toISOString());
      const old = body.items.find((i: { id: string }) => i.id === staleId);
      assert.equal(old.stale, true);
      assert.equal(old.lastHeartbeatAt, new Date(NOW - 60_000).toISOString());
      assert.equal(old.version, "0.0.9");
    });
  },
);

Deno.test({ ...DB_TEST, name: "a clean shutdown removes the instance row" }, async () => {
  const server = await startTestServer(tdb.db, { WORKER: "off" });
  const id = server.running.deps.instanceId;
  const rows = await tdb.db.query<{ role: string }>("select role from instances where id = $1", [
    id,
  ]);
  assert.deepEqual(rows.map((r) => r.role), ["api"]);
  await server.stop();
  const after = await tdb.db.query("select 1 from instances where id = $1", [id]);
  assert.equal(after.length, 0);
  await tdb.reset();
});

Deno.test(
  { ...DB_TEST, name: "startHeartbeat() registers, beats with the clock, deregisters" },
  async () => {
    const clock = { t: NOW };
    const id = crypto.randomUUID();
    const self = { id, role: "api" as const, version: "9.9.9", startedAt: NOW };
    const hb = await startHeartbeat(tdb.db, self, () => clock.t, createLogger("error"), 20);
    const beatAt = async () =>
      (await tdb.db.query<{ at: Date }>("select heartbeat_at as at from instances where id = $1", [
        id,
      ]))[0]?.at;
    assert.equal((await beatAt())?.toISOString(), new Date(NOW).toISOString());
    clock.t = NOW + 7000;
    const deadline = Date.now() + 2000;
    while ((await beatAt())?.getTime() !== NOW + 7000) {
      assert.ok(Date.now() < deadline, "no heartbeat within 2 s");
      await new Promise((r) => setTimeout(r, 10));
    }
    await hb.stop();
    assert.equal(await beatAt(), undefined);
    await tdb.reset();
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/ops/errors lists a 5xx and a failed job, without bodies" },
  async (t) => {
    await withServer(async (s, clock) => {
      await insertJobRow(tdb.db, "failed", {
        error: "results.json missing for 2026-03-01",
        finishedAt: new Date(NOW - 1000),
      });
      await insertJobRow(tdb.db, "queued");
      const failed = await fetch(s.url("/test/boom/secret-path-value"), {
        method: "POST",
        headers: {
          "x-request-id": "req-boom-0001",
          authorization: "Bearer sk_live_supersecret",
          "content-type": "application/json",
        },
        body: JSON.stringify({ password: "hunter2" }),
      });
      await assertProblem(failed, 500, "internal");

      const res = await get(s, "/api/v1/ops/errors");
      const text = await res.text();
      for (const secret of ["hunter2", "supersecret", "secret-path-value"]) {
        assert.ok(!text.includes(secret), `/ops/errors leaks ${secret}`);
      }
      const { items, nextCursor } = JSON.parse(text);
      await t.step("newest first: the 5xx, then the failed job; queued jobs absent", () => {
        assert.equal(items.length, 2);
        assert.equal(nextCursor, null);
        assert.deepEqual(items[0], {
          kind: "request",
          id: items[0].id,
          at: new Date(NOW).toISOString(),
          requestId: "req-boom-0001",
          method: "POST",
          route: "/test/boom/:id",
          status: 500,
        });
        assert.equal(items[1].kind, "job");
        assert.equal(items[1].jobType, "settle");
        assert.equal(items[1].error, "results.json missing for 2026-03-01");
      });
      await t.step("limit=1 pages through both entries", async () => {
        clock.t = NOW + 1000;
        const p1 = await (await get(s, "/api/v1/ops/errors?limit=1")).json();
        assert.equal(p1.items[0].kind, "request");
        const p2 = await (await get(
          s,
          `/api/v1/ops/errors?limit=1&cursor=${p1.nextCursor}`,
        )).json();
        assert.equal(p2.items[0].kind, "job");
        assert.equal(p2.nextCursor, null);
      });
      await t.step("a bad cursor answers 400", async () => {
        await assertProblem(await get(s, "/api/v1/ops/errors?cursor=zzz"), 400, "bad-request");
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/ops/freshness judges each dataset against its threshold" },
  async (t) => {
    await withServer(async (s) => {
      await upsertFreshnessRow(tdb.db, "picks", new Date(NOW - 30 * 60_000));
      const read = async () => {
        const body = await (await get(s, "/api/v1/ops/freshness")).json();
        return Object.fromEntries(body.items.map((i: { dataset: string }) => [i.dataset, i]));
      };
      await t.step("fresh picks, never-loaded results", async () => {
        const f = await read();
        assert.deepEqual(f.picks, {
          dataset: "picks",
          updatedAt: new Date(NOW - 30 * 60_000).toISOString(),
          ageMinutes: 30,
          maxAgeMinutes: 1440,
          stale: false,
          rowCount: 10,
        });
        assert.equal(f.results.stale, true);
        assert.equal(f.results.updatedAt, null);
      });
      await t.step("a lower threshold from config makes picks stale", async () => {
        await upsertSetting(tdb.db, "freshness.picks.maxAgeMinutes", 20, "ops:test");
        await s.running.deps.settings.refresh();
        const f = await read();
        assert.equal(f.picks.maxAgeMinutes, 20);
        assert.equal(f.picks.stale, true);
      });
    });
  },
);
