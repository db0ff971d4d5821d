/**
 * Idempotency-Key across processes: a server killed with SIGKILL mid-request (PGlite data dir
 * or PostgreSQL), and two server processes sharing one PostgreSQL.
 */
import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { type ServerProcess, spawnServer } from "./support/process.ts";
import { countThings, createThingsTable } from "./support/idempotency_fixtures.ts";

const SCRIPT = ["run", "-A", "tests/support/idempotency_server.ts"];

function post(
  p: ServerProcess,
  key: string,
  extra: Record<string, string> = {},
): Promise<Response> {
  return fetch(p.base + "/test/things", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "idempotency-key": key,
      "x-test-principal": "user:alice",
      ...extra,
    },
    body: JSON.stringify({ name: "crash" }),
  });
}

async function count(p: ServerProcess): Promise<number> {
  return (await (await fetch(p.base + "/test/things/count")).json()).count;
}

async function waitFor(p: ServerProcess, text: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!p.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Kills a server inside the handler, restarts it, and retries the way a client would. */
async function crashAndRetry(env: Record<string, string>): Promise<void> {
  const first = await spawnServer(env, 30_000, SCRIPT);
  const inflight = post(first, "crash-1", { "x-test-sleep-ms": "30000" }).catch((e) => e);
  await waitFor(first, "test handler started");
  await first.stop("SIGKILL");
  assert.ok(await inflight instanceof Error, "the in-flight request died with its server");

  const second = await spawnServer(env, 30_000, SCRIPT);
  try {
    let res = await post(second, "crash-1");
    for (let i = 0; res.status === 409 && i < 30; i++) {
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, Number(res.headers.get("retry-after")) * 1000));
      res = await post(second, "crash-1");
    }
    const text = await res.text();
    assert.equal(res.status, 201, text);
    assert.equal(res.headers.get("idempotent-replayed"), null);
    assert.equal(await count(second), 1, "the killed request left no effect; the retry one");
    const again = await post(second, "crash-1");
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.equal(await again.text(), text);
  } finally {
    await second.stop();
  }
}

Deno.test({
  ...DB_TEST,
  ignore: ON_POSTGRES,
  name: "kill -9 mid-request on PGlite: the retry runs once the lock expires",
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-idem-" });
  try {
    await crashAndRetry({ DATA_DIR: dataDir, DATABASE_URL: "", LOCK_TIMEOUT_SECONDS: "2" });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "kill -9 mid-request on PostgreSQL: the retry runs once the lock expires",
}, async () => {
  const tdb = await openTestDb();
  await tdb.db.close();
  await crashAndRetry({ DATABASE_URL: tdb.url!, LOCK_TIMEOUT_SECONDS: "2" });
});

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "50 concurrent duplicates over two processes on one PostgreSQL: one effect",
}, async () => {
  const tdb = await openTestDb();
  await createThingsTable(tdb.db);
  const env = { DATABASE_URL: tdb.url! };
  const a = await spawnServer(env, 30_000, SCRIPT);
  const b = await spawnServer(env, 30_000, SCRIPT);
  try {
    const responses = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => post(i % 2 ? b : a, "dup-50", { "x-test-sleep-ms": "200" }),
      ),
    );
    const statuses = new Map<number, number>();
    const created = new Set<string>();
    for (const res of responses) {
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const text = await res.text();
      if (res.status === 201) created.add(text);
      else assert.equal(res.status, 409, text);
    }
    assert.equal(created.size, 1, `answers: ${JSON.stringify([...statuses])}`);
    assert.equal(await countThings(tdb.db), 1);
    const replay = await post(b, "dup-50");
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.ok(created.has(await replay.text()));
  } finally {
    await a.stop();
    await b.stop();
    await tdb.db.close();
  }
});
