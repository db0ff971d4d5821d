/** lib/credential_memo.ts: what a gate remembers, under which epoch, until when. */
import assert from "node:assert/strict";
import { createCredentialMemo } from "../lib/credential_memo.ts";

Deno.test("a memo answers nothing before it has learned, and what it learned after", () => {
  const memo = createCredentialMemo<string>();
  assert.equal(memo.epoch, null);
  assert.equal(memo.recall("apiKey", "a", 0), undefined);
  memo.learn("7", [["apiKey", "a", "A", null], ["session", "s", "S", null]]);
  assert.equal(memo.epoch, "7");
  assert.equal(memo.recall("apiKey", "a", 0), "A");
  assert.equal(memo.recall("session", "s", Number.MAX_SAFE_INTEGER), "S");
  assert.equal(memo.recall("apiKey", "b", 0), undefined);
  assert.equal(memo.recall("opsToken", "a", 0), undefined, "the same id of another kind");
});

Deno.test("a remembered credential is answered only before its live-until instant", () => {
  const memo = createCredentialMemo<string>();
  memo.learn("1", [["apiKey", "a", "A", 1_000]]);
  assert.equal(memo.recall("apiKey", "a", 999), "A");
  assert.equal(memo.recall("apiKey", "a", 1_000), undefined, "expired at that very instant");
  assert.equal(memo.recall("apiKey", "a", 5_000), undefined);
  memo.learn("1", [["apiKey", "b", "B", NaN]]);
  assert.equal(memo.recall("apiKey", "b", 0), undefined, "an expiry that did not parse");
});

Deno.test("a new epoch forgets everything learned under the old one", () => {
  const memo = createCredentialMemo<string>();
  memo.learn("1", [["apiKey", "a", "A", null]]);
  memo.learn("1", [["apiKey", "b", "B", null]]);
  assert.equal(memo.recall("apiKey", "a", 0), "A", "the same epoch adds to what is known");
  memo.learn("2", [["apiKey", "c", "C", null]]);
  assert.equal(memo.epoch, "2");
  assert.equal(memo.recall("apiKey", "a", 0), undefined);
  assert.equal(memo.recall("apiKey", "b", 0), undefined);
  assert.equal(memo.recall("apiKey", "c", 0), "C");
  memo.learn("3", []);
  assert.equal(memo.recall("apiKey", "c", 0), undefined, "a statement that found nothing");
});

Deno.test("a memo holds at most its size, starting over when full", () => {
  const memo = createCredentialMemo<number>(3);
  memo.learn("1", [["apiKey", "k1", 1, null], ["apiKey", "k2", 2, null], [
    "apiKey",
    "k3",
    3,
    null,
  ]]);
  memo.learn("1", [["apiKey", "k2", 20, null]]);
  assert.equal(memo.recall("apiKey", "k2", 0), 20, "updating a known key is not growth");
  assert.equal(memo.recall("apiKey", "k1", 0), 1);
  memo.learn("1", [["apiKey", "k4", 4, null]]);
  assert.equal(memo.recall("apiKey", "k4", 0), 4);
  assert.equal(memo.recall("apiKey", "k1", 0), undefined);
});
