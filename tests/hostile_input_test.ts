/**
 * Hostile input, generated from the route table: every route in ROUTES, called with a
 * credential that passes its policy, gets a wrong method, hostile path parameters, bad query
 * values, duplicate and oversized headers, and (for routes that read a body) missing, extra
 * and wrong-typed fields, huge strings, deep nesting, invalid UTF-8, NUL characters, numbers
 * out of range, bad dates, oversized and trickled bodies. Every answer must be a 4xx
 * problem+json without a stack trace, and the database row counts must not move.
 *
 * Only the request bodies are hand-written (one valid example per body-reading route, in
 * BODIES); a route that reads a body and has no example fails the test, so new routes are
 * covered as soon as they are added.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createApiKey, createUser, FIXTURE_PASSWORD } from "./support/fixtures.ts";
import { ROUTES } from "../routes/mod.ts";
import type { Route } from "../routes/context.ts";
import { METHODS } from "../lib/router.ts";
import { upsertSetting } from "../db/settings.ts";
import type { SettingKey } from "../lib/settings.ts";
import { checkHeaderSize, checkJsonValue, MAX_HEADER_BYTES, MAX_JSON_DEPTH } from "../lib/http.ts";
import { ApiError } from "../lib/problem.ts";
import { objectBody } from "../lib/fields.ts";
import { decodeCursor } from "../lib/pagination.ts";
import { validateCommand } from "../lib/commands.ts";

const tdb = await openTestDb();

/** A valid body for each route that reads one; `optional` pointers may be absent or null. */
interface BodyExample {
  body: Record<string, unknown>;
  optional?: string[];
}

// `null`: the route reads no body (its credential is a cookie, or the path says it all).
const BODIES: Record<string, BodyExample | null> = {
  "POST /api/v1/auth/signup": {
    body: { email: "new-user@example.com", password: "correct horse" },
  },
  "POST /api/v1/auth/login": { body: { email: "@login", password: FIXTURE_PASSWORD } },
  "POST /api/v1/auth/refresh": null,
  "POST /api/v1/auth/logout": null,
  "POST /api/v1/me/api-keys": {
    body: { name: "notebook", expiresAt: "2099-01-01T00:00:00Z" },
    optional: ["/expiresAt"],
  },
  "PATCH /api/v1/admin/users/:id": {
    body: { tier: "pro", disabled: false },
    optional: ["/tier", "/disabled"],
  },
  "POST /api/v1/ops/tokens": {
    body: { name: "monitoring", scopes: ["ops:read"], expiresAt: "2099-01-01T00:00:00Z" },
    optional: ["/expiresAt"],
  },
  "PUT /api/v1/ops/config/:key": { body: { value: 600 } },
  "POST /api/v1/ops/commands": {
    body: {
      type: "ingest",
      params: {
        date: "2026-03-01",
        picks: [{
          player: "Jayson Tatum",
          team: "BOS",
          opponent: "NYK",
          market: "points",
          line: 27.5,
          side: "over",
          odds: -110,
        }],
        results: [{ player: "Jayson Tatum", market: "points", value: 30 }],
      },
    },
    optional: [
      "/params/picks",
      "/params/results",
      "/params/picks/0/team",
      "/params/picks/0/opponent",
    ],
  },
  "POST /api/v1/ops/commands/:id/cancel": null,
};

/** Tables a rejected request may legitimately touch: its rate-limit window is charged. */
const CHARGED_TABLES = new Set(["ratelimit_windows"]);

const MARK = "__HOSTILE__";
const deep = (levels: number) => "[".repeat(levels) + "]".repeat(levels);

/** Raw JSON values that no field of any example accepts, by the example value's type. */
function hostileValues(example: unknown): [string, string][] {
  const common: [string, string][] = [
    ["deep nesting 10,000", deep(10_000)],
  ];
  if (typeof example === "string") {
    const out: [string, string][] = [
      ["number for string", "42"],
      ["array for string", '["a"]'],
      ["object for string", '{"a":1}'],
      ["null", "null"],
      ["boolean", "true"],
      ["100 KB string", JSON.stringify("x".repeat(100 * 1024))],
      ["NUL in string", JSON.stringify("ab\u0000cd")],
      ["only NUL", '"\\u0000"'],
      ["lone surrogate", '"a\\ud800b"'],
    ];
    if (/^\d{4}-\d{2}-\d{2}/.test(example)) {
      out.push(
        ["bad date 2026-02-30", '"2026-02-30"'],
        ["bad date-time 2026-02-30", '"2026-02-30T12:00:00Z"'],
        ["bad date yesterday", '"yesterday"'],
        ["date in the past", '"2001-01-01T00:00:00Z"'],
      );
    }
    return [...out, ...common];
  }
  if (typeof example === "number") {
    return [
      ["string for number", '"27"'],
      ["null", "null"],
      ["1e309", "1e309"],
      ["-1e309", "-1e309"],
      ["-1", "-1"],
      ["2^63", "9223372036854775808"],
      ["array for number", "[1]"],
      ...common,
    ];
  }
  if (typeof example === "boolean") {
    return [["string for boolean", '"true"'], ["number for boolean", "1"], ["null", "null"]];
  }
  if (Array.isArray(example)) {
    return [["object for array", "{}"], ["string for array", '"x"'], ["null", "null"], ...common];
  }
  return [["array for object", "[]"], ["string for object", '"x"'], ["null", "null"], ...common];
}

/** Every JSON pointer of `value` with the value there (containers included, root excluded). */
function leaves(value: unknown, at = ""): [string, unknown][] {
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [[`${at}/${k}`, v], ...leaves(v, `${at}/${k}`)]);
}

function cloneWith(body: unknown, pointer: string, value: unknown | undefined): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  const parts = pointer.split("/").slice(1);
  let node = copy as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) node = node[p] as Record<string, unknown>;
  const last = parts.at(-1)!;
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
  return copy;
}

/** One hostile request: what it is, and how to send it. */
interface Input {
  label: string;
  method?: string;
  path?: string;
  query?: string;
  headers?: Headers;
  body?: BodyInit | null;
  /** When true, a 2xx answer is acceptable (the route does not read what was altered). */
  mayBeIgnored?: boolean;
  /** The answer comes from Deno's HTTP layer, before the app: a bare 4xx. */
  bare?: boolean;
  /** Send only `headers`, without the route's working credential. */
  noCreds?: boolean;
}

function bodyInputs(example: BodyExample): Input[] {
  const json = (label: string, text: string): Input => ({ label, body: text });
  const optional = new Set(example.optional ?? []);
  const valid = JSON.stringify(example.body);
  const out: Input[] = [
    json("empty object", "{}"),
    json("empty body", ""),
    json("JSON null", "null"),
    json("top-level array", "[]"),
    json("top-level string", '"x"'),
    json("truncated JSON", valid.slice(0, -1)),
    json("deep nesting 10,000 (top level)", deep(10_000)),
    json("deep nesting in an object", `{"a":${deep(10_000)}}`),
    json("extra field", JSON.stringify({ ...example.body, unexpected: 1 })),
    json("extra field __proto__", valid.slice(0, -1) + ',"__proto__":{"admin":true}}'),
    json("NUL in a member name", valid.slice(0, -1) + ',"a\\u0000b":1}'),
    {
      label: "invalid UTF-8",
      body: new Uint8Array([...new TextEncoder().encode('{"x":"'), 0xff, 0xfe, 0x22, 0x7d]),
    },
    { label: "lone surrogate escape", body: valid.slice(0, -1) + ',"s":"\\ud800"}' },
    {
      label: "text/plain body",
      body: valid,
      headers: new Headers({ "content-type": "text/plain" }),
    },
    {
      label: "body over 1 MiB (content-length)",
      body: `{"a":"${"x".repeat(1024 * 1024)}"}`,
    },
    {
      label: "body over 1 MiB (chunked)",
      body: chunked([`{"a":"`, "x".repeat(600 * 1024), "x".repeat(600 * 1024), `"}`], 0),
    },
    { label: "trickled body", body: chunked(["{", ' "unexpected"', ": ", "1", " }"], 40) },
  ];
  for (const [pointer, value] of leaves(example.body)) {
    const isOptional = optional.has(pointer);
    // Removing an array element leaves a shorter list, not a missing field.
    if (!isOptional && !/\/\d+$/.test(pointer)) {
      out.push(
        json(`missing ${pointer}`, JSON.stringify(cloneWith(example.body, pointer, undefined))),
      );
    }
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      out.push(
        json(
          `extra field in ${pointer}`,
          JSON.stringify(cloneWith(example.body, `${pointer}/unexpected`, 1)),
        ),
      );
    }
    for (const [what, raw] of hostileValues(value)) {
      if (isOptional && raw === "null") continue;
      const text = JSON.stringify(cloneWith(example.body, pointer, MARK)).replace(`"${MARK}"`, raw);
      out.push(json(`${pointer}: ${what}`, text));
    }
  }
  return out;
}

function chunked(parts: string[], gapMs: number): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream({
    async pull(c) {
      if (i >= parts.length) return c.close();
      if (gapMs && i > 0) await new Promise((r) => setTimeout(r, gapMs));
      c.enqueue(enc.encode(parts[i++]));
    },
  });
}

const PATH_PARAMS: [string, string][] = [
  ["path traversal (encoded)", "..%2F..%2Fetc%2Fpasswd"],
  ["path traversal (double encoded)", "%252e%252e%252fetc%252fpasswd"],
  ["SQL-looking", encodeURIComponent("1' or '1'='1")],
  ["SQL-looking uuid", encodeURIComponent("00000000-0000-0000-0000-000000000000' or 1=1 --")],
  ["not a UUID", "not-a-uuid"],
  ["overlong id", "a".repeat(10_000)],
  ["encoded NUL", "%00"],
  ["negative number", "-1"],
  ["invalid percent-encoding", "%zz"],
  ["encoded invalid UTF-8", "%ff%fe"],
];

const cursorOf = (v: unknown) =>
  btoa(JSON.stringify(v)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

const QUERIES: [string, string, "page" | "date" | "other"][] = [
  ["limit=-1", "limit=-1", "page"],
  ["limit=0", "limit=0", "page"],
  ["limit=abc", "limit=abc", "page"],
  ["limit=1e309", "limit=1e309", "page"],
  ["limit=2^63", "limit=9223372036854775808", "page"],
  ["limit=1.5", "limit=1.5", "page"],
  ["cursor garbage", "cursor=%%%garbage", "page"],
  ["cursor with a bad date", `cursor=${cursorOf(["2026-02-30", "x"])}`, "page"],
  ["cursor with a SQL id", `cursor=${cursorOf(["2026-01-01T00:00:00Z", "1' or '1'='1"])}`, "page"],
  ["cursor not an array", `cursor=${cursorOf({ a: 1 })}`, "page"],
  ["cursor with NUL", `cursor=${cursorOf(["2026-01-01T00:00:00Z", "\u0000"])}`, "page"],
  ["date=2026-02-30", "date=2026-02-30", "date"],
  ["date=yesterday", "date=yesterday", "date"],
  ["date SQL-looking", `date=${encodeURIComponent("2026-01-01' or '1'='1")}`, "date"],
  ["date=%00", "date=%00", "date"],
  ["state=bogus", "state=bogus", "other"],
  ["state SQL-looking", `state=${encodeURIComponent("queued' or '1'='1")}`, "other"],
  ["type=bogus", "type=bogus", "other"],
  ["jobId not a UUID", "jobId=..%2F..%2Fetc", "other"],
  ["key unknown", "key=%00", "other"],
];

interface Creds {
  adminJwt: string;
  sharpJwt: string;
  sharpKey: string;
  params: Record<string, string>;
  loginEmail: string;
}

function credentialHeaders(route: Route, c: Creds): Record<string, string> {
  if (route.auth.length === 0) return {};
  if (route.tier === "admin" && route.auth.includes("jwt")) {
    return { authorization: `Bearer ${c.adminJwt}` };
  }
  if (route.auth.includes("apiKey")) return { "x-api-key": c.sharpKey };
  return { authorization: `Bearer ${c.sharpJwt}` };
}

function fillPath(route: Route, params: Record<string, string>, override?: string): string {
  return route.path.replace(/:([A-Za-z_]+)/g, (_, name: string) => {
    assert.ok(name in params, `no sample for path parameter :${name} of ${route.path}`);
    return override ?? params[name];
  });
}

/** What a route's GET answer says it reads: paginated lists answer with `nextCursor`. */
interface Reads {
  page: boolean;
}

function inputsFor(route: Route, c: Creds, reads: Reads): Input[] {
  const id = `${route.method} ${route.path}`;
  const readsBody = route.method === "POST" || route.method === "PUT" || route.method === "PATCH";
  const example = readsBody ? BODIES[id] : null;
  assert.ok(!readsBody || id in BODIES, `add a valid body example for ${id} to BODIES`);
  const validBody = example
    ? JSON.stringify(example.body).replace('"@login"', JSON.stringify(c.loginEmail))
    : undefined;
  const served = new Set(ROUTES.filter((r) => r.path === route.path).map((r) => r.method));
  const wrong = METHODS.find((m) => !served.has(m))!;
  const out: Input[] = [
    { label: `wrong method ${wrong}`, method: wrong, body: validBody ?? null },
    { label: "unknown method PURGE", method: "PURGE" },
  ];
  for (const [what, value] of route.path.includes(":") ? PATH_PARAMS : []) {
    out.push({
      label: `path param: ${what}`,
      path: fillPath(route, c.params, value),
      body: validBody,
    });
  }
  if (route.method === "GET") {
    for (const [what, q, kind] of QUERIES) {
      out.push({
        label: `query ${what}`,
        query: q,
        mayBeIgnored: kind === "page" && reads.page ? undefined : true,
      });
    }
  }
  const dup = (name: string, a: string, b: string): Headers => {
    const h = new Headers();
    h.append(name, a);
    h.append(name, b);
    return h;
  };
  if (route.auth.length) {
    out.push(
      {
        label: "duplicate Authorization",
        headers: dup("authorization", `Bearer ${c.adminJwt}`, `Bearer ${c.sharpJwt}`),
        body: validBody,
      },
      {
        label: "duplicate X-API-Key",
        headers: dup("x-api-key", c.sharpKey, c.sharpKey),
        body: validBody,
        noCreds: true,
      },
      {
        label: "Authorization with NUL-like junk",
        headers: new Headers({ authorization: "Bearer \u00ff\u00fe" }),
        body: validBody,
      },
      {
        label: "oversized Authorization (40 KB)",
        headers: new Headers({ authorization: `Bearer ${"a".repeat(40 * 1024)}` }),
        body: validBody,
      },
    );
  }
  if (route.idempotent) {
    const h = dup("idempotency-key", "k-1", "k-2");
    Object.entries(credentialHeaders(route, c)).forEach(([k, v]) => h.set(k, v));
    out.push({ label: "duplicate Idempotency-Key", headers: h, body: validBody });
    const long = new Headers(credentialHeaders(route, c));
    long.set("idempotency-key", "k".repeat(300));
    out.push({ label: "overlong Idempotency-Key", headers: long, body: validBody });
  }
  out.push(
    {
      label: "oversized header (40 KB)",
      headers: withCreds({ "x-filler": "a".repeat(40 * 1024) }),
      body: validBody,
    },
    {
      label: "many headers (80 × 500 B)",
      headers: withCreds(
        Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`x-h${i}`, "b".repeat(500)])),
      ),
      body: validBody,
    },
    {
      label: "too many headers (200)",
      headers: withCreds(
        Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h${i}`, "b"])),
      ),
      body: validBody,
      bare: true,
    },
    {
      label: "oversized header (64 KB)",
      headers: withCreds({ "x-filler": "a".repeat(64 * 1024) }),
      body: validBody,
      bare: true,
    },
  );
  function withCreds(extra: Record<string, string>): Headers {
    return new Headers({ ...credentialHeaders(route, c), ...extra });
  }
  if (example) out.push(...bodyInputs(example));
  return out;
}

async function tableCounts(): Promise<Record<string, number>> {
  const tables = await tdb.db.query<{ name: string }>(
    `select tablename as name from pg_tables where schemaname = 'public' order by 1`,
  );
  const out: Record<string, number> = {};
  for (const { name } of tables) {
    if (CHARGED_TABLES.has(name)) continue;
    const [row] = await tdb.db.query<{ n: number }>(`select count(*)::int as n from "${name}"`);
    out[name] = row.n;
  }
  return out;
}

async function send(s: TestServer, route: Route, input: Input, c: Creds): Promise<Response> {
  const headers = new Headers(input.noCreds ? {} : credentialHeaders(route, c));
  if (input.body !== undefined && input.body !== null) {
    headers.set("content-type", "application/json");
  }
  // A header sent twice arrives as one comma-joined value, as RFC 9110 §5.3 allows.
  input.headers?.forEach((v, k) => headers.set(k, v));
  let path = input.path ?? fillPath(route, c.params);
  if (input.query) path += `?${input.query}`;
  const method = input.method ?? route.method;
  const body = method === "GET" || method === "HEAD" ? undefined : input.body ?? undefined;
  return await fetch(s.url(path), { method, headers, body });
}

async function readsOf(s: TestServer, route: Route, c: Creds): Promise<Reads> {
  if (route.method !== "GET") return { page: false };
  const res = await send(s, route, { label: "baseline" }, c);
  const text = await res.text();
  return { page: res.ok && text.startsWith("{") && "nextCursor" in JSON.parse(text) };
}

/** Checks a hostile answer; returns a failure message, or null. */
async function judge(res: Response, input: Input): Promise<string | null> {
  const text = await res.text().catch((e) => `<body unreadable: ${e}>`);
  if (res.status >= 500) return `answered ${res.status}: ${text.slice(0, 300)}`;
  if (res.status < 400) {
    return input.mayBeIgnored ? null : `accepted with ${res.status}: ${text.slice(0, 200)}`;
  }
  if (input.bare) return null;
  if (res.headers.get("content-type") !== "application/problem+json") {
    return `4xx without problem+json (${res.headers.get("content-type")}): ${text.slice(0, 200)}`;
  }
  const body = JSON.parse(text);
  if (body.status !== res.status || typeof body.type !== "string") return `bad problem ${text}`;
  if (body.requestId !== res.headers.get("x-request-id")) return "requestId mismatch";
  if (/\bat .*\.ts:\d+|node_modules|stack|syntax error at|SQLSTATE/i.test(text)) {
    return `leaks internals: ${text.slice(0, 300)}`;
  }
  if (res.headers.get("x-content-type-options") !== "nosniff") return "no nosniff";
  return null;
}

/** Raises the limits hostile inputs would exhaust and makes the users and credentials. */
async function fixtures(s: TestServer): Promise<Creds> {
  const limits: [SettingKey, number][] = [
    ["ratelimit.sharp.perMinute", 1e9],
    ["ratelimit.sharp.perDay", 1e9],
    ["ratelimit.login.perEmailIp", 1e9],
    ["ratelimit.login.perIp", 1e9],
  ];
  for (const [key, value] of limits) await upsertSetting(tdb.db, key, value, "test");
  await s.running.deps.settings.refresh();
  const admin = await createUser(tdb.db, { tier: "admin" });
  const sharp = await createUser(tdb.db, { tier: "sharp" });
  const target = await createUser(tdb.db, { tier: "free" });
  return {
    adminJwt: await accessTokenFor(s, admin),
    sharpJwt: await accessTokenFor(s, sharp),
    sharpKey: await createApiKey(tdb.db, sharp.id),
    params: { id: target.id, key: "ratelimit.ops.perMinute" },
    loginEmail: sharp.email,
  };
}

Deno.test(
  {
    ...DB_TEST,
    name:
      "every route in ROUTES answers hostile input with 4xx problem+json and leaves the database unchanged",
  },
  async () => {
    await tdb.reset();
    const s = await startTestServer(tdb.db, { WORKER: "off" });
    try {
      const c = await fixtures(s);
      const failures: string[] = [];
      const perRoute: number[] = [];
      let total = 0;
      for (const route of ROUTES) {
        const inputs = inputsFor(route, c, await readsOf(s, route, c));
        const before = await tableCounts();
        for (const input of inputs) {
          let problem: string | null;
          try {
            problem = await judge(await send(s, route, input, c), input);
          } catch (err) {
            // The server may close the connection on a body it refuses mid-upload (413).
            problem = input.label.includes("over 1 MiB") ? null : `request failed: ${err}`;
          }
          if (problem) failures.push(`${route.method} ${route.path} [${input.label}] ${problem}`);
        }
        const after = await tableCounts();
        const moved = Object.keys(after).filter((t) => after[t] !== before[t]);
        if (moved.length) {
          failures.push(`${route.method} ${route.path} changed ${moved.join(", ")}`);
        }
        perRoute.push(inputs.length);
        total += inputs.length;
      }
      const fivexx = s.logs.filter((l) => l.msg === "request" && Number(l.status) >= 500).length;
      assert.deepEqual(failures, [], `${failures.length} hostile inputs mishandled`);
      assert.equal(fivexx, 0);
      console.log(
        `hostile input: ${ROUTES.length} routes, ${total} inputs ` +
          `(${Math.min(...perRoute)}–${Math.max(...perRoute)} per route), ` +
          `0 × 5xx, 0 database changes (${Object.keys(await tableCounts()).length} tables counted)`,
      );
    } finally {
      await s.stop();
    }
  },
);

// The fixes the generated suite led to, each pinned by a unit test of its pure function.

Deno.test("checkJsonValue() refuses NUL, lone surrogates and nesting deeper than 32 levels", () => {
  const pointerOf = (v: unknown) => {
    try {
      checkJsonValue(v);
      return null;
    } catch (err) {
      assert.ok(err instanceof ApiError && err.status === 422);
      return err.options.errors?.[0].pointer;
    }
  };
  assert.equal(pointerOf({ a: [{ b: "x\u0000" }] }), "/a/0/b");
  assert.equal(pointerOf({ "a/b": "\ud800" }), "/a~1b");
  assert.equal(pointerOf({ ["k\u0000"]: 1 }), "/k\u0000");
  assert.equal(pointerOf(JSON.parse(deep(10_000))), "/0".repeat(MAX_JSON_DEPTH));
  assert.equal(pointerOf(JSON.parse(deep(MAX_JSON_DEPTH))), null);
  assert.equal(pointerOf({ name: "ünïcødé 🏀", n: 1e3, ok: true, none: null }), null);
});

Deno.test("objectBody() reports members it does not know", () => {
  const f = objectBody({ name: "x", nmae: "y" }, ["name", "expiresAt"]);
  assert.deepEqual(f.errors.map((e) => e.pointer), ["/nmae"]);
});

Deno.test("decodeCursor() accepts only what encodeCursor() writes", () => {
  assert.deepEqual(decodeCursor(cursorOf(["2026-01-02T03:04:05.000Z", "abc-1"])), {
    at: "2026-01-02T03:04:05.000Z",
    id: "abc-1",
  });
  for (const bad of [["2026-02-30", "x"], ["2026-02-30T00:00:00.000Z", "x"], ["2026-01-02", "x"]]) {
    assert.throws(() => decodeCursor(cursorOf(bad)), ApiError);
  }
  for (const id of ["\u0000", "1' or '1'='1", "", "x".repeat(65)]) {
    assert.throws(() => decodeCursor(cursorOf(["2026-01-02T03:04:05.000Z", id])), ApiError);
  }
});

Deno.test("validateCommand() refuses odds beyond ±100000 and unknown members", () => {
  const pick = { player: "A", market: "points", line: 1.5, side: "over", odds: 2 ** 63 };
  const bad = (body: unknown) => {
    try {
      validateCommand(body);
      return [];
    } catch (err) {
      return (err as ApiError).options.errors!.map((e) => e.pointer);
    }
  };
  assert.deepEqual(bad({ type: "ingest", params: { date: "2026-03-01", picks: [pick] } }), [
    "/params/picks/0/odds",
  ]);
  assert.deepEqual(
    bad({
      type: "ingest",
      params: { date: "2026-03-01", picks: [{ ...pick, odds: 100_000, x: 1 }] },
    }),
    ["/params/picks/0/x"],
  );
  assert.deepEqual(bad({ type: "settle", params: { date: "2026-03-01" }, extra: true }), [
    "/extra",
  ]);
});

Deno.test("checkHeaderSize() answers 431 over 32 KiB of headers", () => {
  checkHeaderSize(new Headers({ a: "x".repeat(MAX_HEADER_BYTES - 1) }));
  assert.throws(
    () => checkHeaderSize(new Headers({ a: "x".repeat(MAX_HEADER_BYTES) })),
    (err: unknown) => err instanceof ApiError && err.status === 431,
  );
});

Deno.test(
  { ...DB_TEST, name: "every route that reads a body answers 408 to a stalled body" },
  async () => {
    await tdb.reset();
    const s = await startTestServer(tdb.db, { WORKER: "off", BODY_TIMEOUT_MS: "300" });
    try {
      const c = await fixtures(s);
      const bodyRoutes = ROUTES.filter((r) => BODIES[`${r.method} ${r.path}`]);
      assert.ok(bodyRoutes.length >= 5);
      for (const route of bodyRoutes) {
        let release = () => {};
        const held = new Promise<void>((r) => release = r);
        const stalled = new ReadableStream<Uint8Array>({
          async start(ctl) {
            ctl.enqueue(new TextEncoder().encode('{"name": "'));
            await held;
            ctl.close();
          },
        });
        const t0 = performance.now();
        const res = await send(s, route, { label: "stalled body", body: stalled }, c);
        const ms = performance.now() - t0;
        release();
        await assertProblem(res, 408, "request-timeout");
        assert.ok(ms < 5000, `${route.method} ${route.path} answered after ${ms} ms`);
      }
    } finally {
      await s.stop();
    }
  },
);
