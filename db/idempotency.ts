/** Queries of the idempotency_keys table. */
import type { Queryable } from "./client.ts";

/** A stored Idempotency-Key row. */
export interface IdempotencyRow {
  state: "in_progress" | "completed";
  fingerprint: string;
  lockId: string;
  lockedAt: Date;
  createdAt: Date;
  status: number | null;
  response: Uint8Array | null;
}

/** Identifies a row: the caller's scope and the SHA-256 of the raw key. */
export interface IdempotencySlot {
  scope: string;
  keyHash: string;
}

/** A claim on a slot by one request. */
export interface IdempotencyClaim extends IdempotencySlot {
  fingerprint: string;
  lockId: string;
  now: Date;
}

/**
 * Claims a new key in one atomic statement: true when this request now owns it, false
 * when a row already exists (then `findIdempotencyRow` says whose it is).
 */
export async function insertIdempotencyClaim(q: Queryable, c: IdempotencyClaim): Promise<boolean> {
  const rows = await q.query(
    `insert into idempotency_keys
       (scope, key_hash, fingerprint, state, lock_id, locked_at, created_at)
     values ($1, $2, $3, 'in_progress', $4, $5, $5)
     on conflict (scope, key_hash) do nothing
     returning 1 as claimed`,
    [c.scope, c.keyHash, c.fingerprint, c.lockId, c.now],
  );
  return rows.length === 1;
}

/** The row of a slot, or null. */
export async function findIdempotencyRow(
  q: Queryable,
  s: IdempotencySlot,
): Promise<IdempotencyRow | null> {
  const rows = await q.query<IdempotencyRow>(
    `select state, fingerprint, lock_id::text as "lockId", locked_at as "lockedAt",
            created_at as "createdAt", status, response
       from idempotency_keys where scope = $1 and key_hash = $2`,
    [s.scope, s.keyHash],
  );
  return rows[0] ?? null;
}

/**
 * Takes over a stale or expired row, compare-and-swap on the lock id that was seen:
 * of several retries racing for it, exactly one gets true.
 */
export async function updateIdempotencyClaim(
  q: Queryable,
  c: IdempotencyClaim,
  seenLockId: string,
): Promise<boolean> {
  const rows = await q.query(
    `update idempotency_keys
        set fingerprint = $3, state = 'in_progress', lock_id = $4, locked_at = $5,
            created_at = $5, completed_at = null, status = null, response = null
      where scope = $1 and key_hash = $2 and lock_id = $6
     returning 1 as claimed`,
    [c.scope, c.keyHash, c.fingerprint, c.lockId, c.now, seenLockId],
  );
  return rows.length === 1;
}

/**
 * Stores the final response of the claim holder (run inside the handler's transaction);
 * false when the claim was taken over meanwhile, and the caller must roll back.
 */
export async function completeIdempotencyRow(
  q: Queryable,
  c: IdempotencyClaim,
  status: number,
  response: Uint8Array,
): Promise<boolean> {
  const rows = await q.query(
    `update idempotency_keys
        set state = 'completed', completed_at = $4, status = $5, response = $6
      where scope = $1 and key_hash = $2 and lock_id = $3 and state = 'in_progress'
     returning 1 as completed`,
    [c.scope, c.keyHash, c.lockId, c.now, status, response],
  );
  return rows.length === 1;
}

/** Releases a claim (only the holder's: by lock id) so that a retry runs again. */
export async function deleteIdempotencyClaim(q: Queryable, c: IdempotencyClaim): Promise<void> {
  await q.query(
    `delete from idempotency_keys
      where scope = $1 and key_hash = $2 and lock_id = $3 and state = 'in_progress'`,
    [c.scope, c.keyHash, c.lockId],
  );
}

/** Deletes every row created before `cutoff`; returns how many. */
export async function deleteIdempotencyRowsBefore(q: Queryable, cutoff: Date): Promise<number> {
  const rows = await q.query<{ n: number }>(
    `with gone as (delete from idempotency_keys where created_at < $1 returning 1)
     select count(*)::int as n from gone`,
    [cutoff],
  );
  return rows[0].n;
}
