/** Queries of the api_keys table. */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";

/** An API key as listed (never its hash). */
export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
}

const LISTED = "id, name, prefix, created_at, expires_at, last_used_at";

/** Stores a new key (hash and display prefix only). */
export async function insertApiKey(
  q: Queryable,
  k: {
    id: string;
    userId: string;
    name: string;
    prefix: string;
    hash: string;
    at: Date;
    expiresAt: Date | null;
  },
): Promise<ApiKeyRow> {
  const rows = await q.query<ApiKeyRow>(
    `insert into api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at)
     values ($1, $2, $3, $4, $5, $6, $7) returning ${LISTED}`,
    [k.id, k.userId, k.name, k.prefix, k.hash, k.at, k.expiresAt],
  );
  return rows[0];
}

/** How many usable (unrevoked, unexpired) keys a user holds. */
export async function countActiveApiKeys(q: Queryable, userId: string, at: Date): Promise<number> {
  const rows = await q.query<{ n: number }>(
    `select count(*)::int as n from api_keys
      where user_id = $1 and revoked_at is null and (expires_at is null or expires_at > $2)`,
    [userId, at],
  );
  return rows[0].n;
}

/** One page of a user's unrevoked keys, newest first (`limit + 1` rows). */
export async function listApiKeysPage(
  q: Queryable,
  userId: string,
  page: { limit: number; cursor: Cursor | null },
): Promise<ApiKeyRow[]> {
  const c = page.cursor;
  return await q.query<ApiKeyRow>(
    `select ${LISTED} from api_keys
      where user_id = $1 and revoked_at is null
        and ($2::timestamptz is null or (created_at, id) < ($2::timestamptz, $3::uuid))
      order by created_at desc, id desc limit $4`,
    [userId, c?.at ?? null, c?.id ?? null, page.limit + 1],
  );
}

/** Revokes one of the user's keys; false when there is no such unrevoked key. */
export async function revokeApiKey(
  q: Queryable,
  id: string,
  userId: string,
  at: Date,
): Promise<boolean> {
  const rows = await q.query(
    `update api_keys set revoked_at = $3
      where id = $1 and user_id = $2 and revoked_at is null returning id`,
    [id, userId, at],
  );
  return rows.length === 1;
}

/** Tables whose rows carry a `last_used_at` written behind in batches. */
export type CredentialTable = "api_keys" | "ops_tokens";

/**
 * Records when credentials of `table` were last used (batched write-behind; never moves a
 * time backwards). `table` is one of two fixed names, never caller input.
 */
export async function updateCredentialsLastUsed(
  q: Queryable,
  table: CredentialTable,
  used: { id: string; at: Date }[],
): Promise<void> {
  if (!used.length) return;
  await q.query(
    `update ${table} c set last_used_at = greatest(c.last_used_at, u.at)
       from (select unnest($1::uuid[]) as id, unnest($2::timestamptz[]) as at) u
      where c.id = u.id`,
    [used.map((x) => x.id), used.map((x) => x.at.toISOString())],
  );
}
