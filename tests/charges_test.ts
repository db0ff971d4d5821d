/** routes/charges.ts: which windows a request is charged to, and their memo per subject. */
import assert from "node:assert/strict";
import { chargesFor, createChargeMemo, windowsSignature } from "../routes/charges.ts";
import type { Settings } from "../db/settings.ts";
import { type SettingKey, SETTINGS } from "../lib/settings.ts";
import type { Principal } from "../lib/policy.ts";

/** Settings as the server reads them: overrides over the defaults. */
function settingsWith(overrides: Partial<Record<SettingKey, number>> = {}) {
  const values = new Map<string, unknown>(Object.entries(overrides));
  const settings = {
    get: (key: SettingKey) => (values.has(key) ? values.get(key) : SETTINGS[key].default) as never,
    version: 0,
    refresh: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  } satisfies Settings;
  const set = (key: SettingKey, v: number) => {
    values.set(key, v);
    settings.version++;
  };
  return { settings, set };
}

const user = (id: string, tier: Principal["tier"] = "sharp"): Principal => ({
  kind: "apiKey",
  subject: `user:${id}`,
  userId: id,
  tier,
  scopes: [],
  credentialId: `key-${id}`,
});

Deno.test("chargesFor(): data by user (minute and day), ops by subject, nothing for admins", () => {
  const { settings } = settingsWith({ "ratelimit.sharp.perMinute": 7 });
  const data = chargesFor("data", user("u1"), "10.0.0.1", settings);
  assert.deepEqual(data.map((c) => [c.key, c.policy.quota, c.policy.windowSeconds]), [
    ["sharp-minute:user:u1", 7, 60],
    ["sharp-day:user:u1", SETTINGS["ratelimit.sharp.perDay"].default, 86_400],
  ]);
  assert.deepEqual(chargesFor("data", null, "10.0.0.1", settings).map((c) => c.key), [
    "sharp-minute:ip:10.0.0.1",
    "sharp-day:ip:10.0.0.1",
  ]);
  assert.deepEqual(chargesFor("ops", user("u1"), "", settings).map((c) => c.key), [
    "ops-minute:user:u1",
  ]);
  assert.deepEqual(chargesFor("data", user("a", "admin"), "", settings), []);
  assert.deepEqual(chargesFor("login", user("u1"), "", settings), []);
});

Deno.test("the memo gives a user the same windows until a quota changes", () => {
  const { settings, set } = settingsWith();
  const chargesOf = createChargeMemo();
  const first = chargesOf("data", user("u1"), "", settings);
  assert.deepEqual(first.list, chargesFor("data", user("u1"), "", settings));
  assert.equal(first.sig, windowsSignature(first.list));
  assert.deepEqual(first.policies, first.list.map((c) => c.policy));
  // Another principal object of the same user: the very same windows and signature.
  assert.equal(chargesOf("data", user("u1"), "", settings), first);
  assert.notEqual(chargesOf("data", user("u2"), "", settings), first);
  assert.notEqual(chargesOf("ops", user("u1"), "", settings).sig, first.sig);

  set("ratelimit.sharp.perDay", 12_345);
  const raised = chargesOf("data", user("u1"), "", settings);
  assert.notEqual(raised.sig, first.sig, "a changed quota is another signature");
  assert.equal(raised.list[1].policy.quota, 12_345);
  assert.equal(chargesOf("data", user("u1"), "", settings), raised);

  assert.deepEqual(chargesOf("data", user("u1", "admin"), "", settings).list, []);
});

Deno.test("the memo holds at most `max` subjects a class", () => {
  const { settings } = settingsWith();
  const chargesOf = createChargeMemo(2);
  const a = chargesOf("data", user("a"), "", settings);
  chargesOf("data", user("b"), "", settings);
  assert.equal(chargesOf("data", user("a"), "", settings), a);
  chargesOf("data", user("c"), "", settings); // full: cleared, then c
  const again = chargesOf("data", user("a"), "", settings);
  assert.notEqual(again, a, "forgotten when the memo was cleared");
  assert.deepEqual(again, a, "and built the same again");
});
