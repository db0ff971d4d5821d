/**
 * A test-only authenticator: the principal comes from an `x-test-principal` header.
 * Used by the ops/data route tests that run the server on a fixed clock months away from
 * the database's own now(), where real sessions would read as expired; the routes, policy
 * and database stay real. Real credentials on the same routes: tests/auth_suite_test.ts
 * (every protected route), tests/e2e_test.ts, tests/hostile_input_test.ts and soak/.
 */
import type { CredentialKind, Principal, Scope, Tier } from "../../lib/policy.ts";
import type { TestServer } from "./server.ts";

const HEADER = "x-test-principal";

/** Headers that make the test authenticator resolve this principal. */
export function asPrincipal(
  kind: CredentialKind,
  tier: Tier | null,
  scopes: readonly Scope[] = [],
  id = "1",
): Record<string, string> {
  return { [HEADER]: JSON.stringify({ kind, tier, scopes, id }) };
}

/** An admin's JWT (every ops scope) and an ops token holding `scopes`. */
export const ADMIN = asPrincipal("jwt", "admin", [
  "ops:read",
  "ops:commands",
  "ops:config",
  "ops:tokens",
]);
export const opsToken = (...scopes: Scope[]) => asPrincipal("opsToken", null, scopes, "77");
export const SHARP_KEY = asPrincipal("apiKey", "sharp", [], "5");
export const PRO_JWT = asPrincipal("jwt", "pro", [], "6");

/** Installs the header authenticator on a running test server. */
export function useTestAuth(server: TestServer): TestServer {
  server.running.deps.authenticate = (req) => {
    const raw = req.headers.get(HEADER);
    if (raw === null) return Promise.resolve(null);
    const p = JSON.parse(raw) as {
      kind: CredentialKind;
      tier: Tier | null;
      scopes: Scope[];
      id: string;
    };
    const principal: Principal = {
      kind: p.kind,
      subject: p.kind === "opsToken" ? `ops:${p.id}` : `user:${p.id}`,
      userId: p.kind === "opsToken" ? null : p.id,
      tier: p.tier,
      scopes: p.scopes,
      credentialId: `cred-${p.id}`,
    };
    return Promise.resolve(principal);
  };
  return server;
}
