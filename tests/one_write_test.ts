import assert from "node:assert/strict";
import { estimatedHeadBytes, headPadding } from "../lib/one_write.ts";
import { openTestDb } from "./support/db.ts";
import { startTestServer } from "./support/server.ts";
import { DB_TEST } from "./support/assert.ts";

const tdb = await openTestDb();

// The headers of a 429 as the app gives them (373 bytes of head on the wire, unpadded).
const REFUSAL: [string, string][] = [
  ["content-type", "application/problem+json"],
  ["retry-after", "61"],
  ["ratelimit-policy", '"sharp-minute";q=10;w=60, "sharp-day";q=1000000000;w=86400'],
  ["ratelimit", '"sharp-minute";r=0;t=61'],
  ["x-request-id", "39055e0f-3c79-482a-9429-1b0dee5b98e3"],
  ["x-content-type-options", "nosniff"],
  ["cache-control", "no-store"],
];

Deno.test("estimatedHeadBytes() is within 16 bytes of the head Deno wrote for a 429", () => {
  // Measured with curl -D on the unpadded server: 373 bytes, "Too Many Requests" as reason.
  assert.ok(Math.abs(estimatedHeadBytes(REFUSAL, 301) - 373) <= 16);
});

Deno.test("headPadding() takes a small answer's head past 512 bytes, with room for the body", () => {
  for (const bodyBytes of [140, 301, 440]) {
    const body = "x".repeat(bodyBytes);
    const pad = headPadding(REFUSAL, body);
    assert.ok(pad, `a ${bodyBytes}-byte body after a 373-byte head is padded`);
    assert.equal(pad[0], "x-pad");
    assert.match(pad[1], /^-+$/, "no whitespace, which a field value would lose");
    const head = estimatedHeadBytes([...REFUSAL, pad], bodyBytes);
    assert.ok(head - 16 > 512 && head + 16 + bodyBytes <= 1024, `${bodyBytes}: head ${head}`);
  }
});

Deno.test("headPadding() leaves alone what fits, what cannot, and empty bodies", () => {
  const short: [string, string][] = [["content-type", "application/json"]];
  assert.equal(headPadding(short, "x".repeat(200)), null, "fits in 512 bytes as it is");
  assert.equal(headPadding(REFUSAL, "x".repeat(4079)), null, "the data page: no padding helps");
  assert.equal(headPadding(REFUSAL, "x".repeat(500)), null, "too little room even at 1 KiB");
  assert.equal(headPadding(REFUSAL, null), null);
  assert.equal(headPadding(REFUSAL, ""), null);
  const long: [string, string][] = [...REFUSAL, ["x-long", "a".repeat(300)]];
  assert.equal(headPadding(long, "x".repeat(200)), null, "a head past 512 bytes already");
});

/** One answer's bytes as they came over a raw socket: its head (through CRLF CRLF) and body. */
async function rawGet(
  port: number,
  path: string,
  headers = "",
): Promise<{ head: string; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n${headers}\r\n`,
    ),
  );
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
  conn.close();
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  const end = text.indexOf("\r\n\r\n") + 4;
  return { head: text.slice(0, end), body: text.slice(end) };
}

Deno.test({
  ...DB_TEST,
  name: "small problem answers leave a real server in one write; the rest are not padded",
  fn: async () => {
    const server = await startTestServer(tdb.db, { LOG_LEVEL: "error" });
    try {
      const port = Number(new URL(server.url("/")).port);
      // A 401 (no credential) and the same with the longest request id a client may send.
      for (const extra of ["", `x-request-id: ${"r".repeat(128)}\r\n`]) {
        const { head, body } = await rawGet(port, "/api/v1/data/picks/today", extra);
        assert.match(head, /^HTTP\/1\.1 401 /);
        const unpadded = head.replace(/x-pad: -+\r\n/i, "");
        assert.ok(
          unpadded.length <= 512 && unpadded.length + body.length > 512,
          `without padding: two writes (head ${unpadded.length}, body ${body.length})`,
        );
        assert.ok(
          head.length > 512 && head.length + body.length <= 1024,
          `padded: one write (head ${head.length}, body ${body.length})`,
        );
      }
      // A 404 fits in 512 bytes as it is.
      const missing = await rawGet(port, "/api/v1/nope");
      assert.match(missing.head, /^HTTP\/1\.1 404 /);
      assert.ok(missing.head.length + missing.body.length <= 512);
      assert.doesNotMatch(missing.head, /x-pad/i);
    } finally {
      await server.stop();
    }
  },
});
