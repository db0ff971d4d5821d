/**
 * Multi-instance: three `proplab serve` processes on one PostgreSQL, no balancer; clients
 * spread their requests round-robin. Limits, idempotency, revocation, migrations and the
 * job queue must behave as if there were one instance (SPEC §1, §5, §6, §8).
 */
import assert from "node:assert/strict";
import { ON_POSTGRES } from "../tests/support/db.ts";
import { assertProblem, DB_TEST } from "../tests/support/assert.ts";
import { type ServerProcess, spawnServer } from "../tests/support/process.ts";
import { createApiKey, createOpsToken, createUser } from "../tests/support/fixtures.ts";
import { loadMigrations } from "../db/migrate.ts";
import { crashLines, login, postJson, scratchDatabase, sleep, waitUntil } from "./support.ts";

const ADMIN = { email: "boot-admin@example.com", password: "boot-admin-password-1" };

function tally(statuses: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "three instances on one PostgreSQL behave as one",
}, async (t) => {
  const { url, db } = await scratchDatabase(false);
  const env = {
    DATABASE_URL: url,
    LOG_LEVEL: "warn",
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
  };
  // Started at the same moment on an empty database: all migrate and bootstrap at once.
  const servers: ServerProcess[] = await Promise.all([1, 2, 3].map(() => spawnServer(env)));
  const bases = servers.map((s) => s.base);
  const at = (i: number) => bases[i % bases.length];
  try {
    await t.step("each migration is applied once; the first admin is created once", async () => {
      const rows = await db.query<{ name: string; n: number }>(
        "select name, count(*)::int as n from schema_migrations group by name order by name",
      );
      const files = (await loadMigrations()).map((m) => m.name);
      assert.deepEqual([...rows], files.map((name) => ({ name, n: 1 })));
      const admins = await db.query<{ n: number }>(
        "select count(*)::int as n from users where tier = 'admin'",
      );
      assert.equal(admins[0].n, 1);
    });

    await t.step("an access token from one instance is accepted by the others", async () => {
      const { accessToken } = await login(at(0), ADMIN);
      for (const base of bases) {
        const res = await fetch(`${base}/api/v1/me`, {
          headers: { authorization: `Bearer ${accessToken}` },
        });
        assert.equal(res.status, 200, await res.text());
      }
    });

    await t.step("150 concurrent data reads against perMinute 50: exactly 50 pass", async () => {
      // Changed through one instance; SPEC §7: every instance applies it within seconds
      // (NOTIFY, with a 2 s poll as the backstop).
      const admin = { authorization: `Bearer ${(await login(at(0), ADMIN)).accessToken}` };
      const put = await fetch(`${at(0)}/api/v1/ops/config/ratelimit.sharp.perMinute`, {
        method: "PUT",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({ value: 50 }),
      });
      assert.equal(put.status, 200, await put.text());
      await sleep(2500);
      const user = await createUser(db, { tier: "sharp" });
      const key = await createApiKey(db, user.id);
      const statuses = await Promise.all(Array.from({ length: 150 }, async (_, i) => {
        const res = await fetch(`${at(i)}/api/v1/data/picks/today`, {
          headers: { "x-api-key": key },
        });
        await res.body?.cancel();
        return res.status;
      }));
      assert.deepEqual(tally(statuses), { 200: 50, 429: 100 });
    });

    await t.step(
      "30 duplicates of one idempotent creation over three instances: one effect",
      async () => {
        const user = await createUser(db, { tier: "sharp" });
        const { accessToken } = await login(at(1), user);
        const auth = { authorization: `Bearer ${accessToken}` };
        const answers = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
          const res = await postJson(
            `${at(i)}/api/v1/me/api-keys`,
            { name: "dup" },
            auth,
            "dup-30",
          );
          return {
            status: res.status,
            replayed: res.headers.has("idempotent-replayed"),
            text: await res.text(),
          };
        }));
        const fresh = answers.filter((a) => a.status === 201 && !a.replayed);
        assert.equal(fresh.length, 1, JSON.stringify(answers.map((a) => [a.status, a.replayed])));
        for (const a of answers) {
          assert.ok(a.status === 409 || (a.status === 201 && a.text === fresh[0].text), a.text);
        }
        const rows = await db.query<{ n: number }>(
          "select count(*)::int as n from api_keys where user_id = $1",
          [user.id],
        );
        assert.equal(rows[0].n, 1);
        const again = await postJson(
          `${at(2)}/api/v1/me/api-keys`,
          { name: "dup" },
          auth,
          "dup-30",
        );
        assert.equal(again.headers.get("idempotent-replayed"), "true");
        assert.equal(await again.text(), fresh[0].text, "a later retry replays the one answer");
        console.log(
          `idempotency over 3 instances: ${JSON.stringify(tally(answers.map((a) => a.status)))}, ${
            answers.filter((a) => a.replayed).length
          } replays`,
        );
      },
    );

    await t.step("revocation through one instance is refused at once by the others", async () => {
      const user = await createUser(db, { tier: "sharp" });
      const { accessToken } = await login(at(2), user);
      const auth = { authorization: `Bearer ${accessToken}` };
      const created = await postJson(`${at(0)}/api/v1/me/api-keys`, { name: "revoked" }, auth);
      const { id, rawKey } = await created.json();
      const read = (base: string) =>
        fetch(`${base}/api/v1/data/picks/today`, { headers: { "x-api-key": rawKey } });
      for (const base of bases) assert.equal((await read(base)).status, 200);
      const del = await fetch(`${at(0)}/api/v1/me/api-keys/${id}`, {
        method: "DELETE",
        headers: auth,
      });
      assert.equal(del.status, 204);
      for (const base of bases.slice(1)) {
        await assertProblem(await read(base), 401, "invalid-token");
      }

      const admin = { authorization: `Bearer ${(await login(at(0), ADMIN)).accessToken}` };
      const tokenRes = await postJson(`${at(0)}/api/v1/ops/tokens`, {
        name: "r",
        scopes: ["ops:read"],
      }, admin);
      const token = await tokenRes.json();
      const health = (base: string) =>
        fetch(`${base}/api/v1/ops/health`, { headers: { authorization: `Bearer ${token.token}` } });
      for (const base of bases) assert.equal((await health(base)).status, 200);
      const revoke = await fetch(`${at(0)}/api/v1/ops/tokens/${token.id}`, {
        method: "DELETE",
        headers: admin,
      });
      assert.equal(revoke.status, 204);
      for (const base of bases.slice(1)) {
        await assertProblem(await health(base), 401, "invalid-token");
      }
    });

    await t.step("jobs queued through three instances each run exactly once", async () => {
      const ops = { authorization: `Bearer ${await createOpsToken(db, ["ops:commands"])}` };
      const ids = await Promise.all(Array.from({ length: 24 }, async (_, i) => {
        const res = await postJson(`${at(i)}/api/v1/ops/commands`, {
          type: "settle",
          params: { date: "2026-01-15" },
        }, ops);
        assert.equal(res.status, 202);
        return (await res.json()).id as string;
      }));
      await waitUntil("every job to finish", async () => {
        const rows = await db.query<{ n: number }>(
          "select count(*)::int as n from jobs where id = any($1::uuid[]) and finished_at is not null",
          [ids],
        );
        return rows[0].n === ids.length;
      }, 30_000);
      const jobs = await db.query<
        { state: string; attempts: number; runs: number; worker: string }
      >(
        `select j.state, j.attempts, j.locked_by as worker,
                (select count(*)::int from pipeline_runs r where r.job_id = j.id) as runs
           from jobs j where j.id = any($1::uuid[])`,
        [ids],
      );
      for (const j of jobs) assert.deepEqual([j.state, j.attempts, j.runs], ["succeeded", 1, 1]);
      const byWorker = new Map<string, number>();
      for (const j of jobs) byWorker.set(j.worker, (byWorker.get(j.worker) ?? 0) + 1);
      console.log(`jobs per worker: ${[...byWorker.values()].join(", ")}`);
    });

    for (const s of servers) assert.deepEqual(crashLines(s), [], s.output());
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await db.close();
  }
});
