import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { loginCharges } from "../routes/charges.ts";
import type { Settings } from "../db/settings.ts";

const settings = { get: () => 10 } as unknown as Settings;
const keyOf = (email: string) => loginCharges(email, "203.0.113.9", settings)[0].key;

Deno.test("the login limit counts one bucket per account however its email is spelt", () => {
  const alice = keyOf("alice@example.com");
  // "İ" lowercases in JS to "i" + U+0307, which the database's lower() drops: same account.
  for (const spelling of ["ALICE@example.com", " alice@example.com ", "alİce@example.com"]) {
    assert.equal(keyOf(spelling), alice, spelling);
  }
  assert.notEqual(keyOf("bob@example.com"), alice);
  assert.notEqual(loginCharges("alice@example.com", "203.0.113.10", settings)[0].key, alice);
  assert.ok(!alice.includes("alice"), "the table holds no addresses");
  // The SHA-256 of "email\nip": windows stored before a release keep counting after it.
  const pair = createHash("sha256").update("alice@example.com\n203.0.113.9").digest("hex");
  assert.equal(alice, `login-email-ip:${pair}`);
});
