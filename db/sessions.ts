/** Queries of login sessions and their rotating refresh tokens. */
import type { Queryable } from "./client.ts";
import type { Tier } from "../lib/policy.ts";

/** Who a refresh or access token acts for, as of now. */
export interface SessionUser {
  session_id: string;
  user_id: string;
  tier: Tier;
}

/** A refresh token looked up by hash, with its session's and user's state. */
export interface RefreshTokenState {
  session_id: string;
  user_id: string;
  tier: Tier;
  retired_at: Date | null;
  expires_at: Date;
  session_revoked: boolean;
  user_disabled: boolean;
}

/** Opens a session for `userId` with its first refresh token, in one statement. */
export async function insertSession(
  q: Queryable,
  s: { id: string; userId: string; tokenHash: string; at: Date; expiresAt: Date },
): Promise<void> {
  await q.query(
    `with s as (
       insert into sessions (id, user_id, created_at) values ($1, $2, $4) returning id
     )
     insert into refresh_tokens (token_hash, session_id, created_at, expires_at)
     select $3, s.id, $4, $5 from s`,
    [s.id, s.userId, s.tokenHash, s.at, s.expiresAt],
  );
}

/**
 * Rotates a refresh token: retires `oldHash` and inserts `newHash` in its session, in one
 * atomic statement. Only a live token of a live session of an enabled user rotates; of two
 * concurrent calls with the same token exactly one gets a row (the other waits on the row
 * lock, then sees `retired_at` set). Null when nothing rotated.
 */
export async function rotateRefreshToken(
  q: Queryable,
  r: { oldHash: string; newHash: string; at: Date; expiresAt: Date },
): Promise<SessionUser | null> {
  const rows = await q.query<SessionUser>(
    `with rotated as (
       update refresh_tokens t set retired_at = $3
         from sessions s join users u on u.id = s.user_id
        where t.token_hash = $1 and t.retired_at is null and t.expires_at > $3
          and s.id = t.session_id and s.revoked_at is null and not u.disabled
       returning t.session_id, u.id as user_id, u.tier
     ), fresh as (
       insert into refresh_tokens (token_hash, session_id, created_at, expires_at)
       select $2, session_id, $3, $4 from rotated
     )
     select session_id, user_id, tier from rotated`,
    [r.oldHash, r.newHash, r.at, r.expiresAt],
  );
  return rows[0] ?? null;
}

/** A refresh token's state by hash (live or retired), or null when unknown. */
export async function findRefreshToken(
  q: Queryable,
  hash: string,
): Promise<RefreshTokenState | null> {
  const rows = await q.query<RefreshTokenState>(
    `select t.session_id, u.id as user_id, u.tier, t.retired_at, t.expires_at,
            s.revoked_at is not null as session_revoked, u.disabled as user_disabled
       from refresh_tokens t join sessions s on s.id = t.session_id
       join users u on u.id = s.user_id
      where t.token_hash = $1`,
    [hash],
  );
  return rows[0] ?? null;
}

/** Adds a refresh token to a live session (the grace-window answer); false if it is not live. */
export async function insertRefreshToken(
  q: Queryable,
  r: { sessionId: string; tokenHash: string; at: Date; expiresAt: Date },
): Promise<boolean> {
  const rows = await q.query(
    `insert into refresh_tokens (token_hash, session_id, created_at, expires_at)
     select $2, s.id, $3, $4 from sessions s join users u on u.id = s.user_id
      where s.id = $1 and s.revoked_at is null and not u.disabled
     returning session_id`,
    [r.sessionId, r.tokenHash, r.at, r.expiresAt],
  );
  return rows.length === 1;
}

/** Revokes a session (logout, reuse detected); idempotent. */
export async function revokeSession(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query("update sessions set revoked_at = $2 where id = $1 and revoked_at is null", [
    id,
    at,
  ]);
}

/** Revokes the session a refresh token (live or retired) belongs to (logout). */
export async function revokeSessionByRefreshToken(
  q: Queryable,
  hash: string,
  at: Date,
): Promise<void> {
  await q.query(
    `update sessions set revoked_at = $2
      where id = (select session_id from refresh_tokens where token_hash = $1)
        and revoked_at is null`,
    [hash, at],
  );
}
