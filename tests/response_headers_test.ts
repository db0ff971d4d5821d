/**
 * The headers of answers the app builds in one go (`ctx.reply`: the cached data page and
 * every problem answer) against those it completes afterwards: the same set either way.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { createApiKey, createUser } from "./support/fixtures.ts";
import { upsertSetting } from "../db/settings.ts";

const tdb = await openTestDb();
const TODAY = "/api/v1/data/picks/today";
const RATELIMIT = /^"sharp-(minute|day)";r=\d+;t=\d+$/;
const POLICY = '"sharp-minute";q=60;w=60, "sharp-day";q=5000;w=86400';

async function withServer(fn: (s: TestServer, key: Record<string, string>) => Promise<void>) {
  await tdb.reset();
  const s = await startTestServer(tdb.db, { WORKER: "off" });
  try {
    const user = await createUser(tdb.db, { tier: "sharp" });
    await fn(s, { "x-api-key": await createApiKey(tdb.db, user.id) });
  } finally {
    await s.stop();
  }
}

/** The response's headers as an object, without the ones Deno adds (date, content-length). */
async function headersOf(res: Response): Promise<Record<string, string>> {
  await res.body?.cancel();
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== "date" && k !== "content-length") out[k] = v;
  });
  return out;
}

Deno.test({ ...DB_TEST, name: "a data page carries every header, once" }, async () => {
  await withServer(async (s, key) => {
    const res = await fetch(s.url(TODAY), { headers: { ...key, "x-request-id": "trace-0001" } });
    assert.equal(res.status, 200);
    const h = await headersOf(res);
    assert.match(h.etag, /^"[A-Za-z0-9_-]{43}"$/);
    assert.match(h.ratelimit, RATELIMIT);
    assert.deepEqual({ ...h, etag: "", ratelimit: "" }, {
      "cache-control": "private, no-cache",
      "content-type": "application/json",
      etag: "",
      ratelimit: "",
      "ratelimit-policy": POLICY,
      "x-content-type-options": "nosniff",
      "x-request-id": "trace-0001",
    });

    const again = await fetch(s.url(TODAY), { headers: { ...key, "if-none-match": h.etag } });
    assert.equal(again.status, 304);
    const h304 = await headersOf(again);
    assert.equal(h304["content-type"], undefined, "a 304 has no body to type");
    assert.equal(h304.etag, h.etag);
    assert.equal(h304["cache-control"], "private, no-cache");
    assert.equal(h304["ratelimit-policy"], POLICY);
    assert.equal(h304["x-content-type-options"], "nosniff");
    assert.match(h304["x-request-id"], /^[0-9a-f-]{36}$/);

    const head = await fetch(s.url(TODAY), { method: "HEAD", headers: key });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    const hHead = await headersOf(head);
    assert.equal(hHead.etag, h.etag);
    assert.equal(hHead["ratelimit-policy"], POLICY);
    assert.equal(hHead["x-content-type-options"], "nosniff");
  });
});

Deno.test({ ...DB_TEST, name: "problem answers carry every header, once" }, async () => {
  await withServer(async (s, key) => {
    const anonymous = await fetch(s.url(TODAY), { headers: { "x-request-id": "trace-0002" } });
    assert.equal(anonymous.status, 401);
    assert.deepEqual(await headersOf(anonymous), {
      "cache-control": "no-store",
      "content-type": "application/problem+json",
      "www-authenticate": 'Bearer realm="proplab"',
      "x-content-type-options": "nosniff",
      "x-request-id": "trace-0002",
    });

    // Another scheme is no Bearer credential: 401 without an error code (RFC 6750 §3).
    const basic = await fetch(s.url(TODAY), { headers: { authorization: "Basic YWRtaW46eA==" } });
    await assertProblem(basic, 401, "unauthorized");
    assert.equal(basic.headers.get("www-authenticate"), 'Bearer realm="proplab"');
    const malformed = await fetch(s.url(TODAY), { headers: { authorization: "Bearer a b" } });
    await assertProblem(malformed, 400, "bad-request");
    assert.equal(
      malformed.headers.get("www-authenticate"),
      'Bearer realm="proplab", error="invalid_request"',
    );

    const bad = await fetch(s.url(TODAY), { headers: { "x-api-key": "npl_nope" } });
    assert.equal(bad.status, 401);
    assert.equal(
      (await headersOf(bad))["www-authenticate"],
      'Bearer realm="proplab", error="invalid_token"',
    );

    await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 1, "test");
    await s.running.deps.settings.refresh();
    const first = await fetch(s.url(TODAY), { headers: key });
    assert.equal(first.status, 200);
    await first.body?.cancel();
    const refused = await fetch(s.url(TODAY), {
      headers: { ...key, "x-request-id": "trace-0003" },
    });
    assert.equal(refused.status, 429);
    const h = await headersOf(refused);
    assert.match(h["retry-after"], /^\d+$/);
    assert.match(h.ratelimit, /^"sharp-minute";r=0;t=\d+$/);
    // The refusal's head is padded so that Deno writes it and its body at once (lib/one_write.ts).
    assert.match(h["x-pad"], /^-+$/);
    assert.deepEqual({ ...h, "retry-after": "", ratelimit: "", "x-pad": "" }, {
      "cache-control": "no-store",
      "content-type": "application/problem+json",
      ratelimit: "",
      "ratelimit-policy": '"sharp-minute";q=1;w=60, "sharp-day";q=5000;w=86400',
      "retry-after": "",
      "x-content-type-options": "nosniff",
      "x-pad": "",
      "x-request-id": "trace-0003",
    });
  });
});
