/**
 * Real credentials for tests of any part: users, access tokens, API keys and ops tokens,
 * written straight to the database (no HTTP, no password hashing at run time).
 */
import type { Db } from "../../db/client.ts";
import type { Deps } from "../../routes/context.ts";
import type { Scope, Tier } from "../../lib/policy.ts";
import { displayPrefix, generateSecret, hashSecret, PREFIX } from "../../lib/secrets.ts";
import { insertUser } from "../../db/users.ts";
import { insertSession } from "../../db/sessions.ts";
import { insertApiKey } from "../../db/api_keys.ts";
import { createOpsToken as insertOpsTokenWithSecret } from "../../routes/ops_tokens.ts";

/** The password of every fixture user. */
export const FIXTURE_PASSWORD = "fixture-password-0";
// scrypt(N=2^17, r=8, p=1) of FIXTURE_PASSWORD, computed once so fixtures cost no hashing.
const FIXTURE_HASH =
  "$scrypt$ln=17,r=8,p=1$eZvdh3OYl1HKD01mEciGyg==$JonvGCwW6h7bRi5opD/3CLSZnXUabfc03xWi1SwyqEM=";

// Rows made one after another get increasing timestamps, so newest-first lists are stable.
let lastAt = 0;
const tick = () => new Date(lastAt = Math.max(Date.now(), lastAt + 1));

/** A fixture user. */
export interface TestUser {
  id: string;
  email: string;
  password: string;
  tier: Tier;
}

/** Inserts a user of `tier` (password FIXTURE_PASSWORD). */
export async function createUser(
  db: Db,
  opts: { tier: Tier; email?: string; disabled?: boolean },
): Promise<TestUser> {
  const id = crypto.randomUUID();
  const email = opts.email ?? `${opts.tier}-${id.slice(0, 8)}@example.com`;
  await insertUser(db, { id, email, passwordHash: FIXTURE_HASH, tier: opts.tier, at: tick() });
  if (opts.disabled) await db.query("update users set disabled = true where id = $1", [id]);
  return { id, email, password: FIXTURE_PASSWORD, tier: opts.tier };
}

/** Anything that carries the server's deps: a TestServer, a Running, or Deps itself. */
type HasDeps = Deps | { deps: Deps } | { running: { deps: Deps } };

function depsOf(target: HasDeps): Deps {
  if ("running" in target) return target.running.deps;
  if ("deps" in target) return target.deps;
  return target;
}

/** Opens a session for `user` and returns an access token signed by the server's keyring. */
export async function accessTokenFor(
  target: HasDeps,
  user: { id: string; tier: Tier },
): Promise<string> {
  const deps = depsOf(target);
  const sessionId = await createSession(deps.db, user.id, deps.now());
  return await deps.identity!.keyring.issue({ userId: user.id, sessionId, tier: user.tier });
}

/** Opens a session (a login, with a refresh token for a day) for `userId`; its id. */
export async function createSession(db: Db, userId: string, atMs: number): Promise<string> {
  const id = crypto.randomUUID();
  await insertSession(db, {
    id,
    userId,
    tokenHash: hashSecret(generateSecret(PREFIX.refresh)),
    at: new Date(atMs),
    expiresAt: new Date(atMs + 86_400_000),
  });
  return id;
}

/** Inserts an API key for `userId` and returns the raw key. */
export async function createApiKey(
  db: Db,
  userId: string,
  opts: { expiresAt?: Date } = {},
): Promise<string> {
  const raw = generateSecret(PREFIX.apiKey);
  await insertApiKey(db, {
    id: crypto.randomUUID(),
    userId,
    name: "fixture",
    prefix: displayPrefix(raw),
    hash: hashSecret(raw),
    at: tick(),
    expiresAt: opts.expiresAt ?? null,
  });
  return raw;
}

/** Inserts an ops token holding `scopes` and returns the raw token. */
export async function createOpsToken(
  db: Db,
  scopes: readonly Scope[],
  opts: { expiresAt?: Date } = {},
): Promise<string> {
  const created = await insertOpsTokenWithSecret(db, {
    name: "fixture",
    scopes,
    expiresAt: opts.expiresAt ?? null,
    createdBy: "test",
    at: tick(),
  });
  return created.token;
}

/** Requests a rate-limit window row counts now (0 when it has no row). */
export async function windowCount(db: Db, key: string): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `select coalesce((select sum(c) from unnest(counts) c), 0)::int as n
       from ratelimit_windows where key = $1`,
    [key],
  );
  return rows[0]?.n ?? 0;
}
