/**
 * Idempotency-Key over HTTP: a real server, the real middleware and database, and
 * test-only creating routes (tests/support/idempotency_fixtures.ts).
 */
import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import {
  countThings,
  createThingsTable,
  testAuthenticate,
  type ThingHooks,
  thingRoutes,
} from "./support/idempotency_fixtures.ts";
import { ROUTES } from "../routes/mod.ts";
import { purgeIdempotencyKeys, startIdempotencyPurge } from "../routes/idempotency.ts";
import { deriveKeyMaterial, requestFingerprint } from "../lib/idempotency.ts";
import { insertIdempotencyClaim } from "../db/idempotency.ts";

const tdb = await openTestDb();
const db = tdb.db;

interface Opts {
  now?: () => number;
  hooks?: ThingHooks;
  env?: Record<string, string>;
}

async function server(opts: Opts = {}): Promise<TestServer> {
  const s = await startTestServer(db, opts.env, opts.now, [
    ...ROUTES,
    ...thingRoutes(opts.hooks),
  ]);
  s.running.deps.authenticate = (req) => testAuthenticate(req);
  return s;
}

async function fresh(opts: Opts = {}): Promise<TestServer> {
  await tdb.reset();
  await createThingsTable(db);
  return await server(opts);
}

function post(
  s: TestServer,
  body: unknown,
  key: string | null,
  { path = "/test/things", who = "user:alice", headers = {} as Record<string, string> } = {},
): Promise<Response> {
  const h: Record<string, string> = { "content-type": "application/json", ...headers };
  if (key !== null) h["idempotency-key"] = key;
  if (who) h["x-test-principal"] = who;
  return fetch(s.url(path), { method: "POST", headers: h, body: JSON.stringify(body) });
}

function headersOf(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== "x-request-id" && k !== "date") out[k] = v;
  });
  return out;
}

async function keyRows(): Promise<{ state: string; status: number | null }[]> {
  return [
    ...await db.query<{ state: string; status: number | null }>(
      "select state, status from idempotency_keys",
    ),
  ];
}

Deno.test({ ...DB_TEST, name: "a retry replays the stored response byte for byte" }, async () => {
  const s = await fresh();
  try {
    const first = await post(s, { name: "a" }, "score-day-2026-05-27-001");
    const firstText = await first.text();
    assert.equal(first.status, 201);
    assert.equal(first.headers.get("idempotent-replayed"), null);
    const again = await post(s, { name: "a" }, "score-day-2026-05-27-001");
    assert.equal(again.status, 201);
    assert.equal(await again.text(), firstText);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.notEqual(again.headers.get("x-request-id"), first.headers.get("x-request-id"));
    const { "idempotent-replayed": _, ...rest } = headersOf(again);
    assert.deepEqual(rest, headersOf(first));
    assert.match(first.headers.get("location") ?? "", /^\/test\/things\/\d+$/);
    assert.equal(await countThings(db), 1);
  } finally {
    await s.stop();
  }
});

Deno.test({ ...DB_TEST, name: "a replay is not charged to the rate limit" }, async () => {
  const s = await fresh();
  let charged = 0;
  s.running.deps.rateLimit = () => {
    charged++;
    return Promise.resolve(null);
  };
  try {
    for (let i = 0; i < 3; i++) await (await post(s, { name: "a" }, "k-1")).body?.cancel();
    assert.equal(charged, 1);
  } finally {
    await s.stop();
  }
});

Deno.test(
  { ...DB_TEST, name: "without Idempotency-Key every POST runs and nothing is stored" },
  async () => {
    const s = await fresh();
    try {
      for (let i = 0; i < 2; i++) assert.equal((await post(s, { name: "a" }, null)).status, 201);
      assert.equal(await countThings(db), 2);
      assert.deepEqual(await keyRows(), []);
    } finally {
      await s.stop();
    }
  },
);

Deno.test({ ...DB_TEST, name: "the bare and quoted forms name the same key" }, async () => {
  const s = await fresh();
  try {
    await (await post(s, { name: "a" }, "abc-123")).body?.cancel();
    const res = await post(s, { name: "a" }, '"abc-123"');
    await res.body?.cancel();
    assert.equal(res.headers.get("idempotent-replayed"), "true");
    assert.equal(await countThings(db), 1);
  } finally {
    await s.stop();
  }
});

Deno.test({ ...DB_TEST, name: "POST answers 400 for a malformed Idempotency-Key" }, async (t) => {
  const s = await fresh();
  try {
    const bad: Record<string, string> = {
      "empty": "",
      "empty quoted": '""',
      "256 characters": "k".repeat(256),
      "a control character": "ab\tc",
      "non-ASCII": "cl\u00e9",
      "an inner space": "a b",
      "an unterminated string": '"abc',
      "a parameter": '"abc";x=1',
      "two keys": "a, b",
    };
    for (const [what, key] of Object.entries(bad)) {
      await t.step(`400 for ${what}`, async () => {
        await assertProblem(await post(s, { name: "a" }, key), 400, "bad-request");
      });
    }
    await t.step("255 characters are accepted", async () => {
      assert.equal((await post(s, { name: "a" }, "k".repeat(255))).status, 201);
    });
    assert.equal(await countThings(db), 1);
  } finally {
    await s.stop();
  }
});

Deno.test(
  { ...DB_TEST, name: "POST answers 422 for a key reused with another request" },
  async (t) => {
    const s = await fresh();
    try {
      await (await post(s, { name: "a" }, "k-1")).body?.cancel();
      await t.step("another body", async () => {
        await assertProblem(await post(s, { name: "b" }, "k-1"), 422, "idempotency-key-reused");
      });
      await t.step("another path", async () => {
        const res = await post(s, { name: "a" }, "k-1", { path: "/test/secrets" });
        await assertProblem(res, 422, "idempotency-key-reused");
      });
      assert.equal(await countThings(db), 1);
    } finally {
      await s.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "POST answers 409 with Retry-After while the first still runs" },
  async () => {
    let release = () => {};
    let started = () => {};
    const inHandler = new Promise<void>((r) => started = r);
    const gate = new Promise<void>((r) => release = r);
    const s = await fresh({
      hooks: {
        hold: () => {
          started();
          return gate;
        },
      },
    });
    try {
      const first = post(s, { name: "slow" }, "k-slow");
      await inHandler;
      const dup = await post(s, { name: "slow" }, "k-slow");
      assert.equal(dup.headers.get("retry-after"), "1");
      await assertProblem(dup, 409, "idempotency-in-progress");
      const other = await post(s, { name: "other" }, "k-slow");
      await assertProblem(other, 422, "idempotency-key-reused");
      release();
      assert.equal((await first).status, 201);
      const after = await post(s, { name: "slow" }, "k-slow");
      assert.equal(after.headers.get("idempotent-replayed"), "true");
      await after.body?.cancel();
      assert.equal(await countThings(db), 1);
    } finally {
      release();
      await s.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "a 5xx rolls back and releases the key so a retry runs" },
  async (t) => {
    let failOnce = true;
    const s = await fresh({
      hooks: {
        hold: () => {
          if (!failOnce) return Promise.resolve();
          failOnce = false;
          return Promise.reject(new Error("boom after the insert"));
        },
      },
    });
    try {
      await t.step("a thrown error: 500, no effect, key released", async () => {
        await assertProblem(await post(s, { name: "a" }, "k-5xx"), 500, "internal");
        assert.equal(await countThings(db), 0);
        assert.deepEqual(await keyRows(), []);
      });
      await t.step("the retry runs and is stored", async () => {
        assert.equal((await post(s, { name: "a" }, "k-5xx")).status, 201);
        assert.equal(await countThings(db), 1);
      });
      await t.step("a returned 500 is not stored either", async () => {
        const res = await post(s, { name: "b", fail: "500" }, "k-500");
        assert.equal(res.status, 500);
        await res.body?.cancel();
        assert.equal(await countThings(db), 1);
        assert.equal((await keyRows()).length, 1);
      });
    } finally {
      await s.stop();
    }
  },
);

Deno.test({ ...DB_TEST, name: "a 429 is not stored; a handler's 409 and 422 are" }, async (t) => {
  const s = await fresh();
  try {
    await t.step("429 releases the key", async () => {
      await assertProblem(
        await post(s, { name: "a", fail: "429" }, "k-429"),
        429,
        "quota-exceeded",
      );
      assert.deepEqual(await keyRows(), []);
    });
    for (const [fail, code] of [["409", "conflict"], ["422", "validation-failed"]]) {
      await t.step(`${fail} is replayed`, async () => {
        const first = await post(s, { name: "a", fail }, `k-${fail}`);
        const firstText = await first.clone().text();
        const body = await assertProblem(first, Number(fail), code);
        const again = await post(s, { name: "a", fail }, `k-${fail}`);
        assert.equal(again.status, Number(fail));
        assert.equal(again.headers.get("idempotent-replayed"), "true");
        // Byte for byte, so the body names the first request's id.
        assert.equal(await again.text(), firstText);
        assert.notEqual(again.headers.get("x-request-id"), body.requestId);
      });
    }
  } finally {
    await s.stop();
  }
});

Deno.test(
  { ...DB_TEST, name: "a stale in-progress key is taken over after lockTimeoutSeconds" },
  async () => {
    let t = Date.parse("2026-05-27T12:00:00Z");
    const s = await fresh({ now: () => t });
    try {
      // A claim left by a crashed process: in progress, never completed.
      const body = new TextEncoder().encode(JSON.stringify({ name: "a" }));
      const m = await deriveKeyMaterial("k-crash", "user:alice");
      const fingerprint = await m.tag(await requestFingerprint("POST", "/test/things", body));
      await insertIdempotencyClaim(db, {
        scope: "user:alice",
        keyHash: m.keyHash,
        fingerprint,
        lockId: crypto.randomUUID(),
        now: new Date(t),
      });
      t += 59_000;
      await assertProblem(await post(s, { name: "a" }, "k-crash"), 409, "idempotency-in-progress");
      t += 1_000;
      assert.equal((await post(s, { name: "a" }, "k-crash")).status, 201);
      const again = await post(s, { name: "a" }, "k-crash");
      assert.equal(again.headers.get("idempotent-replayed"), "true");
      await again.body?.cancel();
      assert.equal(await countThings(db), 1);
    } finally {
      await s.stop();
    }
  },
);

// PostgreSQL only: on PGlite the held transaction owns the one connection, so the second
// instance cannot even read the claim until the first finishes.
Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "a slow first request whose key was taken over is rolled back with 409",
}, async () => {
  let t = Date.parse("2026-05-27T12:00:00Z");
  let release = () => {};
  let started = () => {};
  const inHandler = new Promise<void>((r) => started = r);
  const gate = new Promise<void>((r) => release = r);
  let holdFirst = true;
  const hold = () => {
    if (!holdFirst) return Promise.resolve();
    holdFirst = false;
    started();
    return gate;
  };
  const a = await fresh({ now: () => t, hooks: { hold } });
  const b = await server({ now: () => t, hooks: { hold } });
  try {
    const slow = post(a, { name: "a" }, "k-taken");
    await inHandler;
    t += 61_000;
    const retry = await post(b, { name: "a" }, "k-taken");
    assert.equal(retry.status, 201);
    const stored = await retry.text();
    release();
    await assertProblem(await slow, 409, "idempotency-in-progress");
    assert.equal(await countThings(db), 1);
    const again = await post(a, { name: "a" }, "k-taken");
    assert.equal(await again.text(), stored);
  } finally {
    release();
    await a.stop();
    await b.stop();
  }
});

Deno.test(
  { ...DB_TEST, name: "keys are scoped: two principals or two client IPs, two effects" },
  async (t) => {
    const s = await fresh({ env: { TRUST_PROXY: "1" } });
    try {
      await t.step("two users", async () => {
        for (const who of ["user:alice", "user:bob", "ops:tok1"]) {
          const res = await post(s, { name: "a" }, "shared-key", { who });
          assert.equal(res.status, 201);
          assert.equal(res.headers.get("idempotent-replayed"), null);
          await res.body?.cancel();
        }
        assert.equal(await countThings(db), 3);
      });
      await t.step("anonymous callers by IP", async () => {
        const send = (ip: string) =>
          post(s, { name: "anon" }, "shared-key", {
            path: "/test/signup",
            who: "",
            headers: { "x-forwarded-for": ip },
          });
        for (const ip of ["203.0.113.1", "203.0.113.2"]) await (await send(ip)).body?.cancel();
        const again = await send("203.0.113.1");
        assert.equal(again.headers.get("idempotent-replayed"), "true");
        await again.body?.cancel();
        assert.equal(await countThings(db), 5);
      });
    } finally {
      await s.stop();
    }
  },
);

Deno.test({
  ...DB_TEST,
  name: "the seed's request sent twice returns the same token, stored only encrypted",
}, async () => {
  const s = await fresh();
  try {
    const key = "score-day-2026-05-27-001";
    const first = await post(s, { name: "ci", scopes: ["ops:read"] }, key, {
      path: "/test/secrets",
    });
    const { token } = await first.json();
    assert.match(token, /^nplops_/);
    const rows = await db.query<Record<string, unknown>>("select * from idempotency_keys");
    assert.equal(rows.length, 1);
    const dump = rows.map((r) =>
      Object.values(r).map((v) =>
        v instanceof Uint8Array ? new TextDecoder("latin1").decode(v) : String(v)
      ).join("|")
    ).join("\n");
    for (const secret of [token, token.slice(7, 27), key]) {
      assert.ok(!dump.includes(secret), "a secret is stored in plain text");
    }
    const again = await post(s, { name: "ci", scopes: ["ops:read"] }, key, {
      path: "/test/secrets",
    });
    assert.equal((await again.json()).token, token);
    // Another principal with the same key neither sees nor decrypts it: it gets its own.
    const bob = await post(s, { name: "ci", scopes: ["ops:read"] }, key, {
      path: "/test/secrets",
      who: "user:bob",
    });
    assert.notEqual((await bob.json()).token, token);
  } finally {
    await s.stop();
  }
});

async function concurrent(servers: TestServer[], n: number): Promise<Response[]> {
  return await Promise.all(
    Array.from({ length: n }, (_, i) => post(servers[i % servers.length], { name: "c" }, "k-50")),
  );
}

async function assertOneEffect(responses: Response[]): Promise<void> {
  const created: string[] = [];
  for (const res of responses) {
    const text = await res.text();
    if (res.status === 409) continue;
    assert.equal(res.status, 201, text);
    created.push(text);
  }
  assert.ok(created.length >= 1);
  assert.equal(new Set(created).size, 1, "every 201 is the same answer");
  assert.equal(await countThings(db), 1);
}

Deno.test(
  { ...DB_TEST, name: "50 concurrent duplicates produce exactly one effect" },
  async (t) => {
    await t.step("on one instance", async () => {
      const s = await fresh();
      try {
        await assertOneEffect(await concurrent([s], 50));
      } finally {
        await s.stop();
      }
    });
    await t.step("on two instances sharing the database", async () => {
      const a = await fresh();
      const b = await server();
      try {
        await assertOneEffect(await concurrent([a, b], 50));
      } finally {
        await a.stop();
        await b.stop();
      }
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "purgeIdempotencyKeys() deletes keys past retentionHours" },
  async () => {
    let t = Date.parse("2026-05-27T12:00:00Z");
    const s = await fresh({ now: () => t });
    try {
      await (await post(s, { name: "a" }, "k-old")).body?.cancel();
      t += 23 * 3_600_000;
      await (await post(s, { name: "b" }, "k-new")).body?.cancel();
      assert.equal(await purgeIdempotencyKeys(s.running.deps), 0);
      t += 2 * 3_600_000;
      assert.equal(await purgeIdempotencyKeys(s.running.deps), 1);
      // Past retention the key is free again: the same request runs once more.
      const res = await post(s, { name: "b" }, "k-new");
      assert.equal(res.headers.get("idempotent-replayed"), "true");
      await res.body?.cancel();
      t += 24 * 3_600_000;
      const rerun = await post(s, { name: "b" }, "k-new");
      assert.equal(rerun.headers.get("idempotent-replayed"), null);
      await rerun.body?.cancel();
      assert.equal(await countThings(db), 3);
    } finally {
      await s.stop();
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "startIdempotencyPurge() purges in the background until stopped" },
  async () => {
    let t = Date.parse("2026-05-27T12:00:00Z");
    const s = await fresh({ now: () => t });
    try {
      await (await post(s, { name: "a" }, "k-bg")).body?.cancel();
      t += 25 * 3_600_000;
      const stop = startIdempotencyPurge(s.running.deps, 10);
      try {
        const deadline = Date.now() + 5000;
        while ((await keyRows()).length && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.deepEqual(await keyRows(), []);
      } finally {
        stop();
      }
      assert.ok(s.logs.some((l) => l.msg === "idempotency keys purged" && l.purged === 1));
    } finally {
      await s.stop();
    }
  },
);
