import assert from "node:assert/strict";
import { freePort, spawnServer } from "./support/process.ts";
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
    // A signup whose body arrives in two parts: the request is in flight when SIGTERM lands.
    const enc = new TextEncoder();
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (push = c) });
    const inflight = fetch(server.base + "/api/v1/auth/signup", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    push.enqueue(enc.encode('{"email":"inflight@example.com",'));
    await new Promise((r) => setTimeout(r, 300));
    const status = server.stop("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    push.enqueue(enc.encode('"password":"long-enough-password"}'));
    push.close();
    const res = await inflight;
    assert.equal(res.status, 201, (await res.text()) + server.output());
    assert.equal((await status).code, 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test({ ...DB_TEST, name: "`deno serve serve.ts` serves the same app" }, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-data-" });
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["serve", "-A", "--host", "127.0.0.1", "--port", String(port), "serve.ts"],
    env: { DATA_DIR: dataDir, DATABASE_URL: "", LOG_LEVEL: "error", WORKER: "off" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let status = 0;
    for (let i = 0; i < 600 && status !== 200; i++) {
      status = await fetch(`http://127.0.0.1:${port}/readyz`)
        .then(async (r) => (await r.body?.cancel(), r.status))
        .catch(() => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/me`);
    assert.equal(res.status, 401);
    await res.body?.cancel();
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, "SIGTERM ends `deno serve` cleanly");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    await Deno.remove(dataDir, { recursive: true });
  }
});
