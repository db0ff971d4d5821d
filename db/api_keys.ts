/** Queries of the api_keys table. */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";
import type { Tier } from "../lib/policy.ts";

/** An API key as listed (never its hash). */
export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
}

/** An API key resolved for authentication, with its owner's state now. */
export interface ApiKeyOwner {
  id: string;
  key_hash: string;
  user_id: string;
  tier: Tier;
  expires_at: Date | null;
  revoked: boolean;
  disabled: boolean;
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

/** The key with this SHA-256 and its owner's tier and disabled flag, in one round trip. */
export async function findApiKeyByHash(q: Queryable, hash: string): Promise<ApiKeyOwner | null> {
  const rows = await q.query<ApiKeyOwner>(
    `select k.id, k.key_hash, k.user_id, u.tier, k.expires_at,
            k.revoked_at is not null as revoked, u.disabled
       from api_keys k join users u on u.id = k.user_id
      where k.key_hash = $1`,
    [hash],
  );
  return rows[0] ?? null;
}

/**
 * The keys with these SHA-256 hashes (with their owners' tier and disabled flag), in one
 * round trip: one entry per hash, in order, null where no key has it.
 */
export async function findApiKeysByHashes(
  q: Queryable,
  hashes: readonly string[],
): Promise<(ApiKeyOwner | null)[]> {
  const rows = await q.query<ApiKeyOwner>(
    `select k.id, k.key_hash, k.user_id, u.tier, k.expires_at,
            k.revoked_at is not null as revoked, u.disabled
       from api_keys k join users u on u.id = k.user_id
      where k.key_hash = any($1::text[])`,
    [[...new Set(hashes)]],
  );
  const byHash = new Map(rows.map((r) => [r.key_hash, r]));
  return hashes.map((h) => byHash.get(h) ?? null);
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
