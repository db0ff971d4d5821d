/** Tiers, scopes, credential kinds and the one pure access decision. */

/** Subscription tiers, lowest first. */
export const TIERS = ["free", "pro", "sharp", "admin"] as const;
export type Tier = typeof TIERS[number];

/** Ops scopes, as the seed names them. */
export const SCOPES = ["ops:read", "ops:commands", "ops:config", "ops:tokens"] as const;
export type Scope = typeof SCOPES[number];

/** How a caller proved who it is. */
export type CredentialKind = "jwt" | "apiKey" | "opsToken";

/** The authenticated caller of one request, resolved with the tier it has *now*. */
export interface Principal {
  kind: CredentialKind;
  /** The key rate limits and idempotency keys are scoped to: `user:<id>` or `ops:<id>`. */
  subject: string;
  /** The user behind a JWT or API key; null for ops tokens. */
  userId: string | null;
  /** The user's current tier; null for ops tokens, which have scopes instead. */
  tier: Tier | null;
  scopes: readonly Scope[];
  /** The API key, ops token or session the request came with. */
  credentialId: string;
  /** How to look the credential up again (absent for principals made some other way). */
  ref?: CredentialRef;
  /**
   * Set on a principal recalled from an earlier request (speculative), not yet checked for
   * this one: the principal that request resolved, which this one becomes once the request
   * gate has checked it in the statement that charges the rate limits (routes/ratelimit.ts).
   * Recalled principals are shared by the requests that recall them, made once and never
   * changed: nothing is copied per request.
   */
  recalledFrom?: Principal;
}

/** How a credential is looked up: API keys and ops tokens by hash, sessions by id. */
export type CredentialRef =
  | { kind: "apiKey" | "opsToken"; hash: string }
  | { kind: "session"; sessionId: string };

/**
 * Thrown when a recalled principal no longer holds (revoked, tier changed): nothing was
 * charged, and the request starts over from a fresh lookup.
 */
export class StalePrincipal extends Error {
  constructor() {
    super("the recalled principal no longer holds");
    this.name = "StalePrincipal";
  }
}

/** What a route asks of its caller; `auth: []` means public. */
export interface Requirement {
  auth: readonly CredentialKind[];
  tier?: Tier;
  scope?: Scope;
}

/** The outcome of `authorize`: allow, or a status with the reason to show. */
export type Decision =
  | { allow: true }
  | { allow: false; status: 401 | 403; reason: string };

/** True when `tier` is at least `min`. */
export function tierAtLeast(tier: Tier, min: Tier): boolean {
  return TIERS.indexOf(tier) >= TIERS.indexOf(min);
}

/** The scopes a user of `tier` holds: an admin holds every ops scope, others none. */
export function scopesForTier(tier: Tier): readonly Scope[] {
  return tier === "admin" ? SCOPES : [];
}

const KIND_NAMES: Record<CredentialKind, string> = {
  jwt: "an access token",
  apiKey: "an API key",
  opsToken: "an ops token",
};

/** Decides whether `principal` may call a route with `req`. Pure: no I/O, no clock. */
export function authorize(principal: Principal | null, req: Requirement): Decision {
  if (req.auth.length === 0) return { allow: true };
  if (principal === null) {
    return { allow: false, status: 401, reason: "No valid authentication token provided" };
  }
  if (!req.auth.includes(principal.kind)) {
    const accepted = req.auth.map((k) => KIND_NAMES[k]).join(" or ");
    return {
      allow: false,
      status: 403,
      reason: `This endpoint does not accept ${KIND_NAMES[principal.kind]}; use ${accepted}`,
    };
  }
  if (req.tier && principal.kind !== "opsToken") {
    if (principal.tier === null || !tierAtLeast(principal.tier, req.tier)) {
      return {
        allow: false,
        status: 403,
        reason: `This endpoint requires the ${req.tier} tier or higher`,
      };
    }
  }
  if (req.scope && !principal.scopes.includes(req.scope)) {
    return { allow: false, status: 403, reason: `This endpoint requires the ${req.scope} scope` };
  }
  return { allow: true };
}
