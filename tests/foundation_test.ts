import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { ROUTES } from "../routes/mod.ts";
import { readJson } from "../lib/http.ts";
import { json } from "../lib/http.ts";
import type { Route } from "../routes/context.ts";

const tdb = await openTestDb();

// Test-only routes: one that echoes a JSON body, one that fails with an unexpected error.
const extra: Route[] = [
  {
    method: "POST",
    path: "/test/echo",
    auth: [],
    summary: "echo",
    handler: async (ctx) => json(await readJson(ctx.req)),
  },
  {
    method: "GET",
    path: "/test/boom",
    auth: [],
    summary: "boom",
    handler: () => {
      throw new Error("secret internal detail: relation users does not exist");
    },
  },
];

async function withServer(fn: (url: (p: string) => string, logs: () => string[]) => Promise<void>) {
  const server = await startTestServer(tdb.db, {}, undefined, [...ROUTES, ...extra]);
  try {
    await fn(server.url, () => server.rawLogs);
  } finally {
    await server.stop();
  }
}

Deno.test({ ...DB_TEST, name: "GET /healthz answers 200 with the version" }, async () => {
  await withServer(async (url) => {
    const res = await fetch(url("/healthz"));
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, "ok");
    assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  });
});

Deno.test({ ...DB_TEST, name: "GET /readyz answers 200 when the database answers" }, async () => {
  await withServer(async (url) => {
    const res = await fetch(url("/readyz"));
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, "ready");
  });
});

Deno.test({ ...DB_TEST, name: "unknown paths answer 404 problem+json" }, async () => {
  await withServer(async (url) => {
    const body = await assertProblem(await fetch(url("/api/v1/nothing")), 404, "not-found");
    assert.equal(body.instance, "/api/v1/nothing");
  });
});

Deno.test({ ...DB_TEST, name: "a wrong method answers 405 with Allow" }, async () => {
  await withServer(async (url) => {
    const res = await fetch(url("/healthz"), { method: "DELETE" });
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    await assertProblem(res, 405, "method-not-allowed");
  });
});

Deno.test({ ...DB_TEST, name: "HEAD on a GET route answers headers without a body" }, async () => {
  await withServer(async (url) => {
    const res = await fetch(url("/healthz"), { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "");
  });
});

Deno.test({ ...DB_TEST, name: "a sane X-Request-Id is echoed, a bad one replaced" }, async () => {
  await withServer(async (url, logs) => {
    const ok = await fetch(url("/healthz"), { headers: { "x-request-id": "client-id-0001" } });
    await ok.body?.cancel();
    assert.equal(ok.headers.get("x-request-id"), "client-id-0001");
    assert.ok(logs().some((l) => l.includes('"requestId":"client-id-0001"')));
    const bad = await fetch(url("/healthz"), { headers: { "x-request-id": "a b" } });
    await bad.body?.cancel();
    assert.notEqual(bad.headers.get("x-request-id"), "a b");
  });
});

Deno.test(
  { ...DB_TEST, name: "an unexpected error answers a fixed 500 and logs the cause" },
  async () => {
    await withServer(async (url, logs) => {
      const res = await fetch(url("/test/boom"));
      const body = await assertProblem(res, 500, "internal");
      assert.ok(!JSON.stringify(body).includes("relation users"));
      assert.ok(
        logs().some((l) => l.includes("relation users") && l.includes(String(body.requestId))),
      );
    });
  },
);

Deno.test({ ...DB_TEST, name: "JSON bodies: 415, 400, 413 and 200" }, async (t) => {
  await withServer(async (url) => {
    const post = (body: BodyInit, type = "application/json") =>
      fetch(url("/test/echo"), { method: "POST", body, headers: { "content-type": type } });
    await t.step("415 for text/plain", async () => {
      await assertProblem(await post("{}", "text/plain"), 415, "unsupported-media-type");
    });
    await t.step("400 for malformed JSON", async () => {
      const body = await assertProblem(await post('{"a":}'), 400, "malformed-json");
      assert.match(String(body.detail), /JSON/);
    });
    await t.step("413 beyond 1 MiB", async () => {
      await assertProblem(await post("[" + "1,".repeat(600_000) + "1]"), 413, "payload-too-large");
    });
    await t.step("200 for a good body", async () => {
      const res = await post('{"a":[1,2]}');
      assert.deepEqual(await res.json(), { a: [1, 2] });
    });
  });
});

Deno.test({ ...DB_TEST, name: "each request writes one JSON log line" }, async () => {
  await withServer(async (url, logs) => {
    await (await fetch(url("/healthz"))).body?.cancel();
    const lines = logs().map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
    assert.equal(lines.length, 1);
    assert.equal(lines[0].path, "/healthz");
    assert.equal(lines[0].status, 200);
    assert.equal(typeof lines[0].durationMs, "number");
  });
});

Deno.test({ ...DB_TEST, name: "CORS is off unless CORS_ORIGINS names the origin" }, async () => {
  await withServer(async (url) => {
    const res = await fetch(url("/healthz"), { headers: { origin: "https://evil.test" } });
    await res.body?.cancel();
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    const pre = await fetch(url("/healthz"), {
      method: "OPTIONS",
      headers: { origin: "https://evil.test", "access-control-request-method": "GET" },
    });
    await pre.body?.cancel();
    assert.equal(pre.status, 405);
  });
  const server = await startTestServer(tdb.db, { CORS_ORIGINS: "https://app.test" });
  try {
    const pre = await fetch(server.url("/healthz"), {
      method: "OPTIONS",
      headers: { origin: "https://app.test", "access-control-request-method": "GET" },
    });
    await pre.body?.cancel();
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.test");
    const other = await fetch(server.url("/healthz"), { headers: { origin: "https://x.test" } });
    await other.body?.cancel();
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  } finally {
    await server.stop();
  }
});
