import assert from "node:assert/strict";
import {
  authorize,
  type CredentialKind,
  type Principal,
  type Requirement,
  type Scope,
  SCOPES,
  scopesForTier,
  type Tier,
  TIERS,
} from "../lib/policy.ts";

function user(kind: CredentialKind, tier: Tier): Principal {
  return {
    kind,
    subject: "user:u1",
    userId: "u1",
    tier,
    scopes: scopesForTier(tier),
    credentialId: "c1",
  };
}

function ops(scopes: Scope[]): Principal {
  return {
    kind: "opsToken",
    subject: "ops:t1",
    userId: null,
    tier: null,
    scopes,
    credentialId: "t1",
  };
}

const DATA: Requirement = { auth: ["jwt", "apiKey"], tier: "sharp" };
const OPS: Requirement = { auth: ["jwt", "opsToken"], tier: "admin", scope: "ops:read" };
const KEYS: Requirement = { auth: ["jwt"], tier: "sharp" };

const status = (p: Principal | null, r: Requirement) => {
  const d = authorize(p, r);
  return d.allow ? 200 : d.status;
};

Deno.test("`authorize()` follows the seed's tier table for the data and ops APIs", () => {
  const expected: Record<Tier, [number, number]> = {
    free: [403, 403],
    pro: [403, 403],
    sharp: [200, 403],
    admin: [200, 200],
  };
  for (const tier of TIERS) {
    assert.deepEqual(
      [status(user("jwt", tier), DATA), status(user("jwt", tier), OPS)],
      expected[tier],
      tier,
    );
    assert.equal(status(user("apiKey", tier), DATA), expected[tier][0], `apiKey ${tier}`);
  }
});

Deno.test("`authorize()` answers 401 without a principal and allows public routes", () => {
  assert.equal(status(null, DATA), 401);
  assert.equal(status(null, { auth: [] }), 200);
});

Deno.test("`authorize()` refuses credential kinds a route does not accept with 403", () => {
  assert.equal(status(user("apiKey", "admin"), OPS), 403);
  assert.equal(status(user("apiKey", "admin"), KEYS), 403);
  assert.equal(status(ops([...SCOPES]), DATA), 403);
  const d = authorize(ops([...SCOPES]), DATA);
  assert.ok(!d.allow && /ops token/.test(d.reason));
});

Deno.test("`authorize()` checks an ops token's scopes, not a tier", () => {
  assert.equal(status(ops(["ops:read"]), OPS), 200);
  assert.equal(status(ops(["ops:commands", "ops:config", "ops:tokens"]), OPS), 403);
  assert.equal(status(ops([]), OPS), 403);
});

Deno.test("`scopesForTier()` gives an admin every ops scope and others none", () => {
  assert.deepEqual(scopesForTier("admin"), SCOPES);
  for (const tier of ["free", "pro", "sharp"] as const) assert.deepEqual(scopesForTier(tier), []);
});
