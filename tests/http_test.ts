import assert from "node:assert/strict";
import {
  clientIpFrom,
  parseCookies,
  readJson,
  requestIdFrom,
  serializeCookie,
} from "../lib/http.ts";
import { ApiError } from "../lib/problem.ts";

function post(body: BodyInit | null, type = "application/json", headers: HeadersInit = {}) {
  return new Request("http://x/", {
    method: "POST",
    body,
    headers: { "content-type": type, ...headers },
  });
}

async function rejects(p: Promise<unknown>, code: string): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    assert.equal(err.code, code);
    return err;
  }
  throw new Error(`expected ${code}`);
}

Deno.test("readJson() parses a JSON body", async () => {
  assert.deepEqual(await readJson(post('{"a":1}')), { a: 1 });
  assert.deepEqual(await readJson(post("[]", "application/merge-patch+json")), []);
});

Deno.test("readJson() answers 415 for a non-JSON content type", async () => {
  await rejects(
    readJson(post("a=1", "application/x-www-form-urlencoded")),
    "unsupported-media-type",
  );
  await rejects(
    readJson(new Request("http://x/", { method: "POST", body: "{}" })),
    "unsupported-media-type",
  );
});

Deno.test("readJson() answers 400 with where the JSON broke", async () => {
  const err = await rejects(readJson(post('{"a":')), "malformed-json");
  assert.match(err.detail, /not valid JSON/);
  await rejects(readJson(post("")), "malformed-json");
  await rejects(readJson(post(new Uint8Array([0x7b, 0xff, 0x7d]))), "malformed-json");
});

Deno.test("readJson() answers 413 beyond the limit, declared or streamed", async () => {
  await rejects(readJson(post("x".repeat(2000)), 1000), "payload-too-large");
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(new Uint8Array(600));
    },
  });
  // An endless stream is cut off once it passes the limit.
  await rejects(readJson(post(stream), 1000), "payload-too-large");
});

Deno.test("parseCookies() reads pairs and keeps the first duplicate", () => {
  const c = parseCookies('a=1; b="two"; a=3; junk; =x');
  assert.equal(c.get("a"), "1");
  assert.equal(c.get("b"), "two");
  assert.equal(c.size, 2);
});

Deno.test("serializeCookie() writes the attributes", () => {
  assert.equal(
    serializeCookie("r", "v", {
      maxAge: 5,
      path: "/p",
      httpOnly: true,
      secure: true,
      sameSite: "Strict",
    }),
    "r=v; Max-Age=5; Path=/p; HttpOnly; Secure; SameSite=Strict",
  );
});

Deno.test("requestIdFrom() keeps sane ids and replaces others", () => {
  assert.equal(requestIdFrom("abc-12345678"), "abc-12345678");
  assert.notEqual(requestIdFrom("bad id\n"), "bad id\n");
  assert.notEqual(requestIdFrom("x".repeat(500)), "x".repeat(500));
  assert.match(requestIdFrom(null), /^[0-9a-f-]{36}$/);
});

Deno.test("clientIpFrom() trusts X-Forwarded-For only as far as TRUST_PROXY says", () => {
  const h = new Headers({ "x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.1" });
  assert.equal(clientIpFrom(h, "127.0.0.1", 0), "127.0.0.1");
  assert.equal(clientIpFrom(h, "127.0.0.1", 1), "10.0.0.1");
  assert.equal(clientIpFrom(h, "127.0.0.1", 2), "1.2.3.4");
  assert.equal(clientIpFrom(new Headers({ "x-forwarded-for": "<script>" }), "p", 1), "p");
});
