/** Unit tests of lib/idempotency.ts: pure decisions, fixed clock, no database. */
import assert from "node:assert/strict";
import {
  classify,
  decodeStoredResponse,
  deriveKeyMaterial,
  encodeStoredResponse,
  isStorableStatus,
  type KeyRow,
  parseIdempotencyKey,
  requestFingerprint,
} from "../lib/idempotency.ts";
import { ApiError } from "../lib/problem.ts";
import { ROUTES } from "../routes/mod.ts";

function rejects400(value: string) {
  assert.throws(
    () => parseIdempotencyKey(value),
    (e) => e instanceof ApiError && e.status === 400,
    JSON.stringify(value),
  );
}

Deno.test("parseIdempotencyKey() accepts bare and structured-field string keys", () => {
  assert.equal(parseIdempotencyKey("score-day-2026-05-27-001"), "score-day-2026-05-27-001");
  assert.equal(parseIdempotencyKey('"score-day-2026-05-27-001"'), "score-day-2026-05-27-001");
  assert.equal(parseIdempotencyKey('"a\\"b\\\\c"'), 'a"b\\c');
  assert.equal(parseIdempotencyKey("k".repeat(255)), "k".repeat(255));
  assert.equal(parseIdempotencyKey(`"${"k".repeat(255)}"`), "k".repeat(255));
  assert.equal(parseIdempotencyKey("!~"), "!~");
});

Deno.test("parseIdempotencyKey() rejects everything else with 400", () => {
  for (
    const bad of [
      "",
      '""',
      "k".repeat(256),
      `"${"k".repeat(256)}"`,
      "a b",
      '"a b"',
      "a\tb",
      "a\u0001b",
      "a\u007fb",
      "caf\u00e9",
      "\u{1F3C0}",
      '"abc',
      '"abc"x',
      '"abc";p=1',
      '"a\\nb"',
    ]
  ) rejects400(bad);
});

Deno.test("requestFingerprint() covers method, path and body", async () => {
  const body = new TextEncoder().encode('{"name":"a"}');
  const fp = await requestFingerprint("POST", "/api/v1/ops/tokens", body);
  assert.match(fp, /^POST \/api\/v1\/ops\/tokens [0-9a-f]{64}$/);
  assert.notEqual(fp, await requestFingerprint("PUT", "/api/v1/ops/tokens", body));
  assert.notEqual(fp, await requestFingerprint("POST", "/api/v1/ops/commands", body));
  assert.notEqual(
    fp,
    await requestFingerprint("POST", "/api/v1/ops/tokens", new TextEncoder().encode("{}")),
  );
});

Deno.test("deriveKeyMaterial() is stable per (key, scope) and differs across scopes", async () => {
  const a = await deriveKeyMaterial("k-1", "user:1");
  const a2 = await deriveKeyMaterial("k-1", "user:1");
  const b = await deriveKeyMaterial("k-1", "user:2");
  assert.equal(a.keyHash, a2.keyHash);
  assert.equal(await a.tag("fp"), await a2.tag("fp"));
  assert.notEqual(await a.tag("fp"), await b.tag("fp"));
  assert.match(a.keyHash, /^[0-9a-f]{64}$/);
});

Deno.test("KeyMaterial.seal() round-trips and refuses another key, scope or aad", async () => {
  const a = await deriveKeyMaterial("k-1", "user:1");
  const plain = new TextEncoder().encode('{"token":"nplops_secret"}');
  const sealed = await a.seal(plain, "row-1");
  assert.ok(!new TextDecoder().decode(sealed).includes("nplops_secret"));
  assert.deepEqual(await (await deriveKeyMaterial("k-1", "user:1")).open(sealed, "row-1"), plain);
  await assert.rejects(a.open(sealed, "row-2"));
  await assert.rejects((await deriveKeyMaterial("k-1", "user:2")).open(sealed, "row-1"));
  await assert.rejects((await deriveKeyMaterial("k-2", "user:1")).open(sealed, "row-1"));
  const tampered = sealed.slice();
  tampered[20] ^= 1;
  await assert.rejects(a.open(tampered, "row-1"));
});

Deno.test("encodeStoredResponse() and decodeStoredResponse() round-trip bytes", () => {
  const res = {
    status: 201,
    headers: [["content-type", "application/json"], ["location", "/x/1"]] as [string, string][],
    body: new Uint8Array([0, 1, 2, 255, 123]),
  };
  assert.deepEqual(decodeStoredResponse(201, encodeStoredResponse(res)), res);
  const empty = { status: 204, headers: [], body: new Uint8Array(0) };
  assert.deepEqual(decodeStoredResponse(204, encodeStoredResponse(empty)), empty);
});

Deno.test("isStorableStatus() stores successes and 4xx, not 5xx, 429 or 401", () => {
  for (const s of [200, 201, 202, 204, 400, 403, 404, 409, 422]) assert.ok(isStorableStatus(s));
  for (const s of [401, 429, 500, 502, 503]) assert.ok(!isStorableStatus(s));
});

Deno.test("classify() decides new, replay, mismatch, in-progress and stale-lock", () => {
  const t0 = Date.parse("2026-05-27T12:00:00Z");
  const limits = { retentionMs: 24 * 3_600_000, lockTimeoutMs: 60_000 };
  const running: KeyRow = { state: "in_progress", fingerprint: "f", createdAt: t0, lockedAt: t0 };
  const done: KeyRow = { ...running, state: "completed" };
  assert.equal(classify(null, "f", t0, limits), "new");
  assert.equal(classify(done, "f", t0 + 1000, limits), "replay");
  assert.equal(classify(done, "g", t0 + 1000, limits), "mismatch");
  assert.equal(classify(running, "g", t0 + 1000, limits), "mismatch");
  assert.equal(classify(running, "f", t0 + 59_999, limits), "in-progress");
  assert.equal(classify(running, "f", t0 + 60_000, limits), "stale-lock");
  assert.equal(classify(done, "f", t0 + limits.retentionMs - 1, limits), "replay");
  assert.equal(classify(done, "f", t0 + limits.retentionMs, limits), "new");
  assert.equal(classify(done, "g", t0 + limits.retentionMs, limits), "new");
});

Deno.test("every creating POST in the route table declares idempotent: true", () => {
  const creating = ["/api/v1/me/api-keys", "/api/v1/ops/tokens", "/api/v1/ops/commands"];
  for (const route of ROUTES) {
    const isCreating = creating.includes(route.path) || route.path.endsWith("/auth/signup");
    if (route.method === "POST" && isCreating) assert.equal(route.idempotent, true, route.path);
  }
});
