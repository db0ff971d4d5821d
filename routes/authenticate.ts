/**
 * Credential resolution (`Deps.authenticate`): a JWT, API key or ops token becomes a Principal
 * with the user's tier and disabled state *now*. A format or checksum failure is refused
 * before any lookup. Lookups go through the request gate (routes/gate.ts: one statement per
 * tick for all concurrent requests, started after they arrived).
 *
 * On routes whose rate limit runs on the pool (`recallable`), a credential seen before is
 * recalled from memory as a *speculative* principal: no lookup now, because the rate
 * limiter's gate statement checks it while charging. If it no longer holds, nothing is
 * charged and the request starts over with a fresh lookup (StalePrincipal). Either way the
 * answer reflects the database as of the request: revocation, expiry, downgrade and disable
 * apply on the very next request on every instance.
 */
import { createHash } from "node:crypto";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import { errorFields } from "../lib/log.ts";
import { ApiError } from "../lib/problem.ts";
import { presentedCredential } from "../lib/bearer.ts";
import { createKeyring, JwtError, type KeyMaterial, type Keyring } from "../lib/jwt.ts";
import { createPasswordHasher, type PasswordHasher } from "../lib/password.ts";
import {
  type CredentialRef,
  type Principal,
  type Scope,
  scopesForTier,
  type Tier,
} from "../lib/policy.ts";
import { hashSecret, isWellFormedSecret, PREFIX } from "../lib/secrets.ts";
import type { Db } from "../db/client.ts";
import { updateCredentialsLastUsed } from "../db/api_keys.ts";
import { createGate, type Gate } from "./gate.ts";
import type { LiveCredential } from "../db/gate.ts";
import type { Route } from "./context.ts";
import {
  findSigningKeys,
  insertFirstSigningKey,
  SIGNING_KEYS_CHANNEL,
} from "../db/signing_keys.ts";

/** What the identity routes need besides the database: signing keys, hasher, usage log. */
export interface Identity {
  keyring: Keyring;
  passwords: PasswordHasher;
  usage: UsageTracker;
}

/** Write-behind record of when API keys and ops tokens were last used. */
export interface UsageTracker {
  touch(kind: "apiKey" | "opsToken", id: string, at: number): void;
  /** Writes what was recorded since the last flush (also runs every FLUSH_MS). */
  flush(): Promise<void>;
}

/** `lastUsedAt` is written at most this often per instance, in one statement per table. */
export const USAGE_FLUSH_MS = 10_000;
// Ping the keyring's source now and then in case a rotation NOTIFY was missed.
const KEY_RELOAD_MS = 60_000;

function createUsageTracker(db: Db, log: Logger): UsageTracker {
  // The latest use per credential, in a box changed in place: one look-up per request.
  type Use = { at: number };
  const pending = { apiKey: new Map<string, Use>(), opsToken: new Map<string, Use>() };
  const drain = (m: Map<string, Use>) => {
    const out = [...m].map(([id, use]) => ({ id, at: new Date(use.at) }));
    m.clear();
    return out;
  };
  return {
    touch(kind, id, at) {
      const use = pending[kind].get(id);
      if (!use) pending[kind].set(id, { at });
      else if (at > use.at) use.at = at;
    },
    async flush() {
      try {
        await updateCredentialsLastUsed(db, "api_keys", drain(pending.apiKey));
        await updateCredentialsLastUsed(db, "ops_tokens", drain(pending.opsToken));
      } catch (err) {
        log.warn("lastUsedAt flush failed", errorFields(err));
      }
    },
  };
}

/** The fixed key of JWT_SECRET; its kid is derived from the secret, never the secret itself. */
function configuredKey(secret: string): KeyMaterial {
  const kid = "env-" +
    createHash("sha256").update("proplab-kid:" + secret).digest("hex").slice(0, 16);
  return { kid, secret: new TextEncoder().encode(secret), createdAt: 0, retiredAt: null };
}

/** The running identity service: the Identity deps plus `authenticate` and a stop hook. */
export interface IdentityService {
  identity: Identity;
  /** `fresh`: look the credential up even where it could be recalled. */
  authenticate(req: Request, route: Route, fresh?: boolean): Promise<Principal | null>;
  /** Drops a recalled credential that turned out stale. */
  forget(ref: CredentialRef): void;
  stop(): Promise<void>;
}

/** Principals recalled per credential kind at most. */
const RECALL_MAX = 100_000;

/** True when `route`'s rate limiter runs on the pool and so checks a recalled credential. */
export const recallable = (route: Route): boolean =>
  route.limit !== undefined && route.limit !== "login" && !route.idempotent;

/** Builds the identity service once at startup (creates the first signing key if needed). */
export async function createIdentityService(opts: {
  db: Db;
  config: Config;
  log: Logger;
  now: () => number;
  passwords?: PasswordHasher;
  /** The gate lookups go through; default one of its own over `db`. */
  gate?: Gate;
}): Promise<IdentityService> {
  const { db, config, log, now } = opts;
  const fixed = config.jwtSecret ? configuredKey(config.jwtSecret) : null;
  if (!fixed) await insertFirstSigningKey(db);
  const keyring = await createKeyring(async () => fixed ? [fixed] : await findSigningKeys(db), now);
  const reload = () =>
    keyring.reload().catch((err) => log.warn("keyring reload failed", errorFields(err)));
  const unlisten = fixed
    ? null
    : await db.listen(SIGNING_KEYS_CHANNEL, () => void reload()).catch(() => null);
  const reloadTimer = fixed ? undefined : setInterval(reload, KEY_RELOAD_MS);
  const usage = createUsageTracker(db, log);
  const flushTimer = setInterval(() => void usage.flush(), USAGE_FLUSH_MS);
  const identity = { keyring, passwords: opts.passwords ?? createPasswordHasher(), usage };
  const gate = opts.gate ?? createGate(db, now);
  const recalled = createRecallBook();
  const deps: AuthDeps = {
    identity,
    now,
    lookup: async (ref) => (await gate({ ref, expect: null, charges: [] })).found,
    recall: recalled.get,
    remember: recalled.set,
  };
  const lookupOnly: AuthDeps = { ...deps, recall: null };
  return {
    identity,
    authenticate: (req, route, fresh = false) =>
      authenticateRequest(req, fresh || !recallable(route) ? lookupOnly : deps),
    forget: recalled.delete,
    async stop() {
      clearInterval(reloadTimer);
      clearInterval(flushTimer);
      await unlisten?.().catch(() => {});
      await usage.flush();
    },
  };
}

/**
 * Principals recalled per credential, a map per kind keyed by the hash or session id as
 * they come (no key string built per request); each cleared whole when full. Each is kept in
 * its speculative form, made once when it is remembered.
 */
function createRecallBook() {
  const byKind = {
    apiKey: new Map<string, Principal>(),
    opsToken: new Map<string, Principal>(),
    session: new Map<string, Principal>(),
  };
  const idOf = (ref: CredentialRef) => ref.kind === "session" ? ref.sessionId : ref.hash;
  return {
    get: (ref: CredentialRef) => byKind[ref.kind].get(idOf(ref)),
    set(p: Principal) {
      const known = byKind[p.ref!.kind];
      if (known.size >= RECALL_MAX) known.clear();
      known.set(idOf(p.ref!), { ...p, recalledFrom: p });
    },
    delete: (ref: CredentialRef) => void byKind[ref.kind].delete(idOf(ref)),
  };
}

interface AuthDeps {
  identity: Identity;
  now: () => number;
  /** The credential as stored now, or null. */
  lookup: (ref: CredentialRef) => Promise<LiveCredential | null>;
  /** A principal resolved earlier for this credential, speculative; null: always look up. */
  recall: ((ref: CredentialRef) => Principal | undefined) | null;
  /** Keeps a freshly resolved principal for `recall`. */
  remember: (p: Principal) => void;
}

const invalid = (detail: string) => new ApiError("invalid-token", detail);

/** Resolves the request's credential; null without one; ApiError("invalid-token") when bad. */
export async function authenticateRequest(req: Request, deps: AuthDeps): Promise<Principal | null> {
  const presented = presentedCredential(req.headers);
  if (presented === null) return null;
  switch (presented.kind) {
    case "jwt":
      return await principalFromJwt(presented.value, deps);
    case "apiKey":
      return await principalFromApiKey(presented.value, deps);
    case "opsToken":
      return await principalFromOpsToken(presented.value, deps);
  }
}

/**
 * The principal of `ref`: recalled (speculative) when allowed and known, else looked up now;
 * `toPrincipal` turns the stored credential into one, or null when it does not hold.
 */
async function resolve(
  ref: CredentialRef,
  deps: AuthDeps,
  toPrincipal: (found: LiveCredential) => Principal | null,
  refusal: string,
  matches: (p: Principal) => boolean = () => true,
): Promise<Principal> {
  const known = deps.recall?.(ref);
  if (known && matches(known)) return known;
  const found = await deps.lookup(ref);
  const principal = found && found.live ? toPrincipal(found) : null;
  if (!principal) throw invalid(refusal);
  const resolved = { ...principal, ref };
  deps.remember(resolved);
  return resolved;
}

async function principalFromJwt(token: string, deps: AuthDeps): Promise<Principal> {
  if (token.startsWith(PREFIX.apiKey)) {
    throw invalid("API keys are sent in the X-API-Key header, not as a Bearer token");
  }
  let claims;
  try {
    claims = await deps.identity.keyring.verify(token);
  } catch (err) {
    if (err instanceof JwtError) throw invalid("The access token is invalid or expired");
    throw err;
  }
  // lib/jwt.ts admits only UUID sub and sid claims.
  return await resolve(
    { kind: "session", sessionId: claims.sid },
    deps,
    (found) => found.userId === claims.sub ? userPrincipal("jwt", found) : null,
    "The session of this access token has ended",
    (p) => p.userId === claims.sub,
  );
}

function userPrincipal(kind: "jwt" | "apiKey", found: LiveCredential): Principal {
  const tier = found.tier as Tier;
  return {
    kind,
    subject: `user:${found.userId}`,
    userId: found.userId,
    tier,
    scopes: kind === "jwt" ? scopesForTier(tier) : [],
    credentialId: found.credentialId,
  };
}

async function principalFromApiKey(raw: string, deps: AuthDeps): Promise<Principal> {
  if (!isWellFormedSecret(raw, PREFIX.apiKey)) {
    throw invalid("The API key is malformed (wrong prefix, length or checksum)");
  }
  const p = await resolve(
    { kind: "apiKey", hash: hashSecret(raw) },
    deps,
    (found) => userPrincipal("apiKey", found),
    "The API key is invalid, expired or revoked",
  );
  if (!p.recalledFrom) deps.identity.usage.touch("apiKey", p.credentialId, deps.now());
  return p;
}

async function principalFromOpsToken(raw: string, deps: AuthDeps): Promise<Principal> {
  if (!isWellFormedSecret(raw, PREFIX.opsToken)) {
    throw invalid("The ops token is malformed (wrong length or checksum)");
  }
  const p = await resolve(
    { kind: "opsToken", hash: hashSecret(raw) },
    deps,
    (found) => ({
      kind: "opsToken",
      subject: `ops:${found.credentialId}`,
      userId: null,
      tier: null,
      scopes: (found.scopes ?? []) as Scope[],
      credentialId: found.credentialId,
    }),
    "The ops token is invalid, expired or revoked",
  );
  if (!p.recalledFrom) deps.identity.usage.touch("opsToken", p.credentialId, deps.now());
  return p;
}
