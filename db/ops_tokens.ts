/** Queries of the ops_tokens table. */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";
import type { Scope } from "../lib/policy.ts";

/** An ops token as listed (never its hash). */
export interface OpsTokenRow {
  id: string;
  name: string;
  scopes: Scope[];
  prefix: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
}

/** An ops token resolved for authentication. */
export interface OpsTokenAuth {
  id: string;
  token_hash: string;
  scopes: Scope[];
  expires_at: Date | null;
  revoked: boolean;
}

const LISTED = "id, name, scopes, prefix, created_by, created_at, expires_at, last_used_at";

/** Stores a new ops token (hash and display prefix only). */
export async function insertOpsToken(
  q: Queryable,
  t: {
    id: string;
    name: string;
    scopes: readonly Scope[];
    prefix: string;
    hash: string;
    createdBy: string;
    at: Date;
    expiresAt: Date | null;
  },
): Promise<OpsTokenRow> {
  const rows = await q.query<OpsTokenRow>(
    `insert into ops_tokens (id, name, scopes, prefix, token_hash, created_by, created_at,
       expires_at)
     values ($1, $2, $3::text[], $4, $5, $6, $7, $8) returning ${LISTED}`,
    [t.id, t.name, t.scopes, t.prefix, t.hash, t.createdBy, t.at, t.expiresAt],
  );
  return rows[0];
}

/** One page of unrevoked ops tokens, newest first (`limit + 1` rows). */
export async function listOpsTokensPage(
  q: Queryable,
  page: { limit: number; cursor: Cursor | null },
): Promise<OpsTokenRow[]> {
  const c = page.cursor;
  return await q.query<OpsTokenRow>(
    `select ${LISTED} from ops_tokens
      where revoked_at is null
        and ($1::timestamptz is null or (created_at, id) < ($1::timestamptz, $2::uuid))
      order by created_at desc, id desc limit $3`,
    [c?.at ?? null, c?.id ?? null, page.limit + 1],
  );
}

/** An unrevoked ops token's scopes and expiry, by id; null when there is none. */
export async function findOpsToken(
  q: Queryable,
  id: string,
): Promise<{ scopes: Scope[]; expires_at: Date | null } | null> {
  const rows = await q.query<{ scopes: Scope[]; expires_at: Date | null }>(
    "select scopes, expires_at from ops_tokens where id = $1 and revoked_at is null",
    [id],
  );
  return rows[0] ?? null;
}

/** Revokes an ops token; false when there is no such unrevoked token. */
export async function revokeOpsToken(q: Queryable, id: string, at: Date): Promise<boolean> {
  const rows = await q.query(
    "update ops_tokens set revoked_at = $2 where id = $1 and revoked_at is null returning id",
    [id, at],
  );
  return rows.length === 1;
}
