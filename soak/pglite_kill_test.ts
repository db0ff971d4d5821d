/**
 * The embedded default under kill -9: a PGlite data dir written by concurrent requests and the
 * job worker when the process dies must open again, with every acknowledged write in it.
 * (tests/shutdown_test.ts covers an idle kill -9 and SIGTERM.)
 */
import assert from "node:assert/strict";
import { DB_TEST } from "../tests/support/assert.ts";
import { type ServerProcess, spawnServer } from "../tests/support/process.ts";
import { crashLines, login, postJson, sleep, SOAK_SECONDS } from "./support.ts";

const ADMIN = { email: "pglite-admin@example.com", password: "pglite-admin-password-1" };

Deno.test({
  ...DB_TEST,
  name: "kill -9 under write load on PGlite: the data dir reopens with every acknowledged write",
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-soak-" });
  const env = {
    DATA_DIR: dataDir,
    DATABASE_URL: "",
    LOG_LEVEL: "warn",
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
  };
  let second: ServerProcess | null = null;
  try {
    const first = await spawnServer(env);
    const auth = { authorization: `Bearer ${(await login(first.base, ADMIN)).accessToken}` };
    const jobs: string[] = [];
    const tokens: string[] = [];
    let killed = false;
    const loop = async (n: number) => {
      for (let i = 0; !killed; i++) {
        try {
          const key = `pglite-${n}-${i}`;
          const cmd = await postJson(
            `${first.base}/api/v1/ops/commands`,
            {
              type: "settle",
              params: { date: "2026-01-15" },
            },
            auth,
            `${key}-cmd`,
          );
          if (cmd.status === 202) jobs.push((await cmd.json()).id);
          else await cmd.body?.cancel();
          const tok = await postJson(
            `${first.base}/api/v1/ops/tokens`,
            {
              name: key,
              scopes: ["ops:read"],
            },
            auth,
            `${key}-token`,
          );
          if (tok.status === 201) tokens.push((await tok.json()).id);
          else await tok.body?.cancel();
        } catch { /* cut off by the kill */ }
      }
    };
    const loops = Promise.all([1, 2, 3].map(loop));
    await sleep(SOAK_SECONDS * 500);
    assert.equal((await first.stop("SIGKILL")).signal, "SIGKILL");
    killed = true;
    await loops;
    assert.ok(jobs.length > 0 && tokens.length > 0, "writes were acknowledged before the kill");

    const restarted = second = await spawnServer(env);
    const auth2 = { authorization: `Bearer ${(await login(restarted.base, ADMIN)).accessToken}` };
    for (const id of jobs) {
      const res = await fetch(`${restarted.base}/api/v1/ops/jobs/${id}`, { headers: auth2 });
      assert.equal(res.status, 200, `acknowledged job ${id}: ${await res.text()}`);
    }
    const listed = new Set<string>();
    for (let cursor: string | null = null;;) {
      const page: Response = await fetch(
        `${restarted.base}/api/v1/ops/tokens?limit=100${cursor ? `&cursor=${cursor}` : ""}`,
        { headers: auth2 },
      );
      const body = await page.json();
      for (const t of body.items) listed.add(t.id);
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    for (const id of tokens) assert.ok(listed.has(id), `acknowledged ops token ${id} kept`);
    assert.deepEqual(crashLines(second), []);
    console.log(`pglite kill -9: ${jobs.length} jobs and ${tokens.length} ops tokens checked`);
    assert.equal((await second.stop("SIGTERM")).code, 0, second.output());
    second = null;
  } finally {
    await second?.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
