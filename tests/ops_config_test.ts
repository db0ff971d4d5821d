import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { ADMIN, opsToken, useTestAuth } from "./support/principal.ts";
import { SETTINGS } from "../lib/settings.ts";
import { createSettings, upsertSetting } from "../db/settings.ts";
import { createLogger } from "../lib/log.ts";

const tdb = await openTestDb();

async function withServer(fn: (s: TestServer) => Promise<void>): Promise<void> {
  const server = useTestAuth(await startTestServer(tdb.db));
  try {
    await fn(server);
  } finally {
    await server.stop();
    await tdb.reset();
  }
}

const put = (s: TestServer, key: string, body: unknown, headers = opsToken("ops:config")) =>
  fetch(s.url(`/api/v1/ops/config/${key}`), {
    method: "PUT",
    headers: { ...headers, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

async function configOf(s: TestServer, key: string): Promise<Record<string, unknown>> {
  const res = await fetch(s.url("/api/v1/ops/config"), { headers: ADMIN });
  const { items } = await res.json();
  return items.find((i: { key: string }) => i.key === key);
}

Deno.test(
  {
    ...DB_TEST,
    name: "GET /api/v1/ops/config lists every setting with value, default, description",
  },
  async (t) => {
    await withServer(async (s) => {
      await t.step("200 with every key of lib/settings.ts", async () => {
        const res = await fetch(s.url("/api/v1/ops/config"), { headers: opsToken("ops:config") });
        assert.equal(res.status, 200);
        const { items } = await res.json();
        assert.deepEqual(items.map((i: { key: string }) => i.key), Object.keys(SETTINGS));
        const tz = items.find((i: { key: string }) => i.key === "data.timezone");
        assert.deepEqual(tz, {
          key: "data.timezone",
          value: "America/New_York",
          default: "America/New_York",
          description: SETTINGS["data.timezone"].description,
          updatedAt: null,
          updatedBy: null,
        });
      });
      await t.step("403 for an ops token with ops:read only", async () => {
        const res = await fetch(s.url("/api/v1/ops/config"), { headers: opsToken("ops:read") });
        await assertProblem(res, 403, "forbidden");
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "PUT /api/v1/ops/config/{key} validates, stores and audits" },
  async (t) => {
    await withServer(async (s) => {
      await t.step("200 with the new entry for a valid value", async () => {
        const res = await put(s, "ratelimit.sharp.perMinute", { value: 120 });
        assert.equal(res.status, 200);
        const entry = await res.json();
        assert.equal(entry.key, "ratelimit.sharp.perMinute");
        assert.equal(entry.value, 120);
        assert.equal(entry.default, 60);
        assert.equal(entry.updatedBy, "ops:77");
        assert.ok(!Number.isNaN(Date.parse(entry.updatedAt)));
        assert.equal(s.running.deps.settings.get("ratelimit.sharp.perMinute"), 120);
        assert.equal((await configOf(s, "ratelimit.sharp.perMinute")).value, 120);
      });
      await t.step("the audit trail records who, old and new", async () => {
        await put(s, "ratelimit.sharp.perMinute", { value: 90 }, ADMIN).then((r) =>
          r.body?.cancel()
        );
        const res = await fetch(s.url("/api/v1/ops/config/audit?key=ratelimit.sharp.perMinute"), {
          headers: ADMIN,
        });
        const { items } = await res.json();
        assert.equal(items.length, 2);
        assert.deepEqual(
          items.map((i: Record<string, unknown>) => [i.oldValue, i.newValue, i.changedBy]),
          [[120, 90, "user:1"], [null, 120, "ops:77"]],
        );
        const rows = await tdb.db.query<{ n: number }>(
          "select count(*)::int as n from settings_audit",
        );
        assert.equal(rows[0].n, 2);
      });
      await t.step("audit pages with limit and cursor", async () => {
        const p1 =
          await (await fetch(s.url("/api/v1/ops/config/audit?limit=1"), { headers: ADMIN }))
            .json();
        assert.equal(p1.items[0].newValue, 90);
        const p2 = await (await fetch(
          s.url(`/api/v1/ops/config/audit?limit=1&cursor=${p1.nextCursor}`),
          { headers: ADMIN },
        )).json();
        assert.equal(p2.items[0].newValue, 120);
        assert.equal(p2.nextCursor, null);
      });
      await t.step("404 for an unknown key", async () => {
        await assertProblem(await put(s, "no.such.key", { value: 1 }), 404, "not-found");
      });
      await t.step("422 with pointer /value for a wrong type", async () => {
        for (
          const [key, value] of [
            ["ratelimit.sharp.perMinute", "120"],
            ["ratelimit.sharp.perMinute", 0.5],
            ["signup.enabled", "yes"],
            ["data.timezone", "Mars/Olympus"],
          ] as const
        ) {
          const body = await assertProblem(await put(s, key, { value }), 422, "validation-failed");
          assert.equal((body.errors as { pointer: string }[])[0].pointer, "/value");
        }
      });
      await t.step("422 for a body without value", async () => {
        await assertProblem(
          await put(s, "signup.enabled", { enabled: false }),
          422,
          "validation-failed",
        );
      });
      await t.step("400 for malformed JSON", async () => {
        await assertProblem(await put(s, "signup.enabled", "{"), 400, "malformed-json");
      });
      await t.step("403 for an ops token with ops:read only", async () => {
        const res = await put(s, "signup.enabled", { value: false }, opsToken("ops:read"));
        await assertProblem(res, 403, "forbidden");
      });
      await t.step("rejected writes leave no audit rows", async () => {
        const rows = await tdb.db.query<{ n: number }>(
          "select count(*)::int as n from settings_audit",
        );
        assert.equal(rows[0].n, 2);
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "a config change is visible through a second server within 3 s" },
  async () => {
    const a = useTestAuth(await startTestServer(tdb.db));
    const b = useTestAuth(await startTestServer(tdb.db));
    try {
      assert.equal((await configOf(b, "signup.enabled")).value, true);
      const res = await put(a, "signup.enabled", { value: false });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const started = Date.now();
      while ((await configOf(b, "signup.enabled")).value !== false) {
        assert.ok(Date.now() - started < 3000, "server B did not see the change within 3 s");
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await a.stop();
      await b.stop();
      await tdb.reset();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "Settings.version moves when a value changes, and only then" },
  async () => {
    const settings = await createSettings(tdb.db, createLogger("error"), 60_000);
    try {
      const v0 = settings.version;
      await settings.refresh();
      assert.equal(settings.version, v0, "nothing changed");
      await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 7, "test");
      await settings.refresh();
      assert.equal(settings.version, v0 + 1);
      assert.equal(settings.get("ratelimit.sharp.perMinute"), 7);
      await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 7, "test");
      await settings.refresh();
      assert.equal(settings.version, v0 + 1, "the same value again");
      await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 8, "test");
      await settings.refresh();
      assert.equal(settings.version, v0 + 2);
    } finally {
      await settings.stop();
      await tdb.reset();
    }
  },
);
