/** Queries of the users table. */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";
import type { Tier } from "../lib/policy.ts";

/** A user row. */
export interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  tier: Tier;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

/** True for a unique-constraint violation (SQLSTATE 23505) on either driver. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "23505";
}

/**
 * Inserts a user; null when the email exists (case-insensitive). `on conflict do nothing`
 * instead of catching 23505 keeps an enclosing transaction usable for the 409 answer.
 */
export async function insertUser(
  q: Queryable,
  u: { id: string; email: string; passwordHash: string; tier: Tier; at: Date },
): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(
    `insert into users (id, email, password_hash, tier, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $5) on conflict do nothing returning *`,
    [u.id, u.email, u.passwordHash, u.tier, u.at],
  );
  return rows[0] ?? null;
}

/** The user with `email` (case-insensitive), or null. */
export async function findUserByEmail(q: Queryable, email: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>("select * from users where lower(email) = lower($1)", [
    email,
  ]);
  return rows[0] ?? null;
}

/** The user with `id`, or null. */
export async function findUserById(q: Queryable, id: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>("select * from users where id = $1", [id]);
  return rows[0] ?? null;
}

/** True when no user exists yet (bootstrap of the first admin). */
export async function isUsersEmpty(q: Queryable): Promise<boolean> {
  const rows = await q.query<{ empty: boolean }>(
    "select not exists (select 1 from users) as empty",
  );
  return rows[0].empty;
}

/** Replaces a password hash (rehash at login after the parameters were raised). */
export async function updateUserPasswordHash(q: Queryable, id: string, hash: string) {
  await q.query("update users set password_hash = $2 where id = $1", [id, hash]);
}

/** Locks the user's row until the end of the caller's transaction (serialises key creation). */
export async function lockUser(q: Queryable, id: string): Promise<void> {
  await q.query("select id from users where id = $1 for update", [id]);
}

/** One page of users, newest first (`limit + 1` rows so the caller knows there is more). */
export async function listUsersPage(
  q: Queryable,
  page: { limit: number; cursor: Cursor | null },
): Promise<UserRow[]> {
  if (!page.cursor) {
    return await q.query<UserRow>(
      "select * from users order by created_at desc, id desc limit $1",
      [page.limit + 1],
    );
  }
  return await q.query<UserRow>(
    `select * from users where (created_at, id) < ($1::timestamptz, $2::uuid)
     order by created_at desc, id desc limit $3`,
    [page.cursor.at, page.cursor.id, page.limit + 1],
  );
}

/**
 * Changes a user's tier and/or disabled flag; disabling also revokes every open session,
 * in the same statement. Returns the updated row, or null when there is no such user.
 */
export async function updateUserAccess(
  q: Queryable,
  id: string,
  change: { tier: Tier | null; disabled: boolean | null },
  at: Date,
): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(
    `with u as (
       update users set tier = coalesce($2, tier), disabled = coalesce($3, disabled),
         updated_at = $4
        where id = $1 returning *
     ), s as (
       update sessions set revoked_at = $4
        where user_id = $1 and revoked_at is null and $3::boolean is true and exists (select 1 from u)
     )
     select * from u`,
    [id, change.tier, change.disabled, at],
  );
  return rows[0] ?? null;
}
