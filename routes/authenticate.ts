/**
 * Credential resolution (`Deps.authenticate`): a JWT, API key or ops token becomes a Principal
 * with the user's tier and disabled state *now*, in at most one database round trip. Nothing
 * is cached, so revocation, expiry, downgrade and disable apply on the very next request on
 * every instance. A format or checksum failure is refused before any lookup. Concurrent
 * API-key and session checks share one query (lib/batch.ts), which always starts after the
 * requests in it arrived: as fresh as one query each.
 */
import { createHash } from "node:crypto";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import { errorFields } from "../lib/log.ts";
import { ApiError } from "../lib/problem.ts";
import { presentedCredential } from "../lib/bearer.ts";
import { createKeyring, JwtError, type KeyMaterial, type Keyring } from "../lib/jwt.ts";
import { createPasswordHasher, type PasswordHasher } from "../lib/password.ts";
import { type Principal, scopesForTier } from "../lib/policy.ts";
import { constantTimeEqual, hashSecret, isWellFormedSecret, PREFIX } from "../lib/secrets.ts";
import type { Db } from "../db/client.ts";
import {
  type ApiKeyOwner,
  findApiKeyByHash,
  findApiKeysByHashes,
  updateCredentialsLastUsed,
} from "../db/api_keys.ts";
import { createBatcher } from "../lib/batch.ts";
import { findOpsTokenByHash } from "../db/ops_tokens.ts";
import { findLiveSessionUser, type SessionUser } from "../db/sessions.ts";
import { findUsersOfLiveSessions } from "../db/users.ts";
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
  const pending = { apiKey: new Map<string, number>(), opsToken: new Map<string, number>() };
  const drain = (m: Map<string, number>) => {
    const out = [...m].map(([id, at]) => ({ id, at: new Date(at) }));
    m.clear();
    return out;
  };
  return {
    touch(kind, id, at) {
      pending[kind].set(id, Math.max(at, pending[kind].get(id) ?? 0));
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
  authenticate(req: Request): Promise<Principal | null>;
  stop(): Promise<void>;
}

/** Builds the identity service once at startup (creates the first signing key if needed). */
export async function createIdentityService(opts: {
  db: Db;
  config: Config;
  log: Logger;
  now: () => number;
  passwords?: PasswordHasher;
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
  // Concurrent API-key checks share one query per tick (a batch never started before its
  // requests arrived, so revocation still applies to the very next request).
  const findApiKey = createBatcher((hashes: string[]) => findApiKeysByHashes(db, hashes), 2);
  const findSessionUser = createBatcher(
    (pairs: SessionPair[]) => findUsersOfLiveSessions(db, pairs),
    2,
  );
  return {
    identity,
    authenticate: (req) =>
      authenticateRequest(req, { db, identity, now, findApiKey, findSessionUser }),
    async stop() {
      clearInterval(reloadTimer);
      clearInterval(flushTimer);
      await unlisten?.().catch(() => {});
      await usage.flush();
    },
  };
}

interface AuthDeps {
  db: Db;
  identity: Identity;
  now: () => number;
  /** Looks a key up by hash; default one query per call. */
  findApiKey?: (hash: string) => Promise<ApiKeyOwner | null>;
  /** The live session's user; default one query per call. */
  findSessionUser?: (pair: SessionPair) => Promise<SessionUser | null>;
}

type SessionPair = { sessionId: string; userId: string };

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
  const live = deps.findSessionUser
    ? await deps.findSessionUser({ sessionId: claims.sid, userId: claims.sub })
    : await findLiveSessionUser(deps.db, claims.sid, claims.sub);
  if (!live) throw invalid("The session of this access token has ended");
  return {
    kind: "jwt",
    subject: `user:${live.user_id}`,
    userId: live.user_id,
    tier: live.tier,
    scopes: scopesForTier(live.tier),
    credentialId: live.session_id,
  };
}

const isLive = (row: { expires_at: Date | null; revoked: boolean }, now: number) =>
  !row.revoked && (row.expires_at === null || row.expires_at.getTime() > now);

async function principalFromApiKey(raw: string, deps: AuthDeps): Promise<Principal> {
  if (!isWellFormedSecret(raw, PREFIX.apiKey)) {
    throw invalid("The API key is malformed (wrong prefix, length or checksum)");
  }
  const hash = hashSecret(raw);
  const row = deps.findApiKey ? await deps.findApiKey(hash) : await findApiKeyByHash(deps.db, hash);
  const now = deps.now();
  if (!row || !constantTimeEqual(row.key_hash, hash) || !isLive(row, now) || row.disabled) {
    throw invalid("The API key is invalid, expired or revoked");
  }
  deps.identity.usage.touch("apiKey", row.id, now);
  return {
    kind: "apiKey",
    subject: `user:${row.user_id}`,
    userId: row.user_id,
    tier: row.tier,
    scopes: [],
    credentialId: row.id,
  };
}

async function principalFromOpsToken(raw: string, deps: AuthDeps): Promise<Principal> {
  if (!isWellFormedSecret(raw, PREFIX.opsToken)) {
    throw invalid("The ops token is malformed (wrong length or checksum)");
  }
  const hash = hashSecret(raw);
  const row = await findOpsTokenByHash(deps.db, hash);
  const now = deps.now();
  if (!row || !constantTimeEqual(row.token_hash, hash) || !isLive(row, now)) {
    throw invalid("The ops token is invalid, expired or revoked");
  }
  deps.identity.usage.touch("opsToken", row.id, now);
  return {
    kind: "opsToken",
    subject: `ops:${row.id}`,
    userId: null,
    tier: null,
    scopes: row.scopes,
    credentialId: row.id,
  };
}
