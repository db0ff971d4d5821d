import assert from "node:assert/strict";
import { spawnServer } from "./support/process.ts";
import { DB_TEST } from "./support/assert.ts";

// The embedded default: a PGlite data dir must survive SIGTERM and SIGKILL and open again.
Deno.test({ ...DB_TEST, name: "PGlite data dir survives SIGTERM and kill -9" }, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-data-" });
  const env = { DATA_DIR: dataDir, DATABASE_URL: "" };
  try {
    const first = await spawnServer(env);
    assert.equal((await fetch(first.base + "/readyz")).status, 200);
    const status = await first.stop("SIGTERM");
    assert.equal(status.code, 0, first.output());
    assert.match(first.output(), /"msg":"stopped"/);

    const second = await spawnServer(env);
    assert.equal((await fetch(second.base + "/readyz")).status, 200);
    await second.stop("SIGKILL");

    const third = await spawnServer(env);
    const res = await fetch(third.base + "/readyz");
    assert.equal(res.status, 200, third.output());
    assert.equal((await res.json()).database, "pglite");
    assert.equal((await third.stop()).code, 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test({ ...DB_TEST, name: "SIGTERM lets an in-flight request finish" }, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-data-" });
  try {
    const server = await spawnServer({ DATA_DIR: dataDir, DATABASE_URL: "" });
    const inflight = fetch(server.base + "/readyz");
    const status = server.stop("SIGTERM");
    const res = await inflight;
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.equal((await status).code, 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
