/**
 * lib/sha256.ts against the FIPS 180-4 examples and against node:crypto on every length
 * around the block and padding boundaries, ASCII and not.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex } from "../lib/sha256.ts";
import { hashSecret } from "../lib/secrets.ts";

const native = (text: string) => createHash("sha256").update(text).digest("hex");

Deno.test("sha256Hex() gives the FIPS 180-4 example digests", () => {
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(
    sha256Hex("a".repeat(1_000_000)),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
});

/** `length` pseudo-random UTF-16 units below `below` (seeded, so a failure reproduces). */
function text(length: number, below: number, seed: number): string {
  let x = seed * 2654435761 + length;
  let out = "";
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out += String.fromCharCode(x % below);
  }
  return out;
}

Deno.test("sha256Hex() matches node:crypto at every length from 0 to 300 bytes", () => {
  for (let length = 0; length <= 300; length++) {
    for (const [below, seed] of [[128, 1], [128, 2], [0x800, 3], [0xd800, 4]]) {
      const t = text(length, below, seed);
      assert.equal(sha256Hex(t), native(t), `length ${length}, units below ${below}`);
    }
  }
});

Deno.test("sha256Hex() hashes the UTF-8 bytes: astral characters and lone surrogates", () => {
  // A lone surrogate becomes U+FFFD in UTF-8, in TextEncoder and node:crypto alike.
  for (const t of ["é", "€uro", "🏀".repeat(20), "a\ud800b", "\udc00", "x\u0000y"]) {
    assert.equal(sha256Hex(t), native(t), JSON.stringify(t));
  }
});

Deno.test("hashSecret() is the SHA-256 hex the database stores", () => {
  const raw = "npl_" + "A1b2C3d4".repeat(4) + "zzzzzz";
  assert.equal(hashSecret(raw), native(raw));
  assert.match(hashSecret(raw), /^[0-9a-f]{64}$/);
});
