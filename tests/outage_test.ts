import assert from "node:assert/strict";
import { createScratchDatabase, ON_POSTGRES } from "./support/db.ts";
import { startCutProxy } from "./support/proxy.ts";
import { startTestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { openPostgres } from "../db/client.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";

// Needs a PostgreSQL server to take away; PGlite lives in the process and cannot go down.
Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "database outage: /readyz answers 503 within 2 s, then recovers by itself",
}, async () => {
  const url = new URL(await createScratchDatabase());
  const proxy = startCutProxy({ hostname: url.hostname, port: Number(url.port) });
  url.port = String(proxy.port);
  const transitions: boolean[] = [];
  const db = openPostgres(url.toString(), { onAvailability: (up) => transitions.push(up) });
  await migrate(db, await loadMigrations());
  const server = await startTestServer(db);
  try {
    assert.equal((await fetch(server.url("/readyz"))).status, 200);
    proxy.down();
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const res = await fetch(server.url("/readyz"));
      const ms = performance.now() - t0;
      await assertProblem(res, 503, "database-unavailable");
      assert.ok(ms < 2000, `503 took ${ms} ms`);
    }
    assert.equal((await fetch(server.url("/healthz"))).status, 200, "process stays alive");
    proxy.up();
    const t0 = performance.now();
    let status = 0;
    while (performance.now() - t0 < 5000) {
      const res = await fetch(server.url("/readyz"));
      await res.body?.cancel();
      status = res.status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, "recovered within 5 s");
    assert.deepEqual(transitions, [false, true], "the outage is reported once, and its end once");
  } finally {
    await server.stop();
    proxy.close();
    await db.close();
  }
});
