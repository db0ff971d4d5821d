/**
 * The request gate at run time: every request's database work of one tick (credential
 * checks, rate-limit charges, data versions) goes in one statement (db/gate.ts). A batch
 * always starts after its requests arrived, so what it reads is as fresh as one query each.
 */
import type { Db } from "../db/client.ts";
import { type GateItem, type GateMemo, type GateResult, runGate } from "../db/gate.ts";
import { createBatcher } from "../lib/batch.ts";
import { createCredentialMemo } from "../lib/credential_memo.ts";

/**
 * Sends one request's item through the next gate statement. `onAnswer`, when given, sees the
 * result as soon as the statement answers, before the next statement is built and before
 * any caller resumes: what it records (a lease) is there for requests joining that next one.
 * It must not throw.
 */
export type Gate = (item: GateItem, onAnswer?: (r: GateResult) => void) => Promise<GateResult>;

/**
 * A gate over `db`: one statement in flight; requests arriving meanwhile queue for the next,
 * which makes batches about twice as large as with two in flight, and measured faster
 * (hot key 22k vs 19k req/s; 1,000 keys 13.5k vs 12k; PostgreSQL CPU a third lower).
 */
export function createGate(db: Db, now: () => number): Gate {
  // PGlite answers within the same turn of the event loop: wait for the turn's requests.
  const wait = db.kind === "pglite" ? "macrotask" : "microtask";
  const q = db.gateConnection ?? db;
  // Credentials found earlier, answered without a lookup while the epoch stands still.
  const memo: GateMemo = createCredentialMemo();
  type Entry = { item: GateItem; onAnswer?: (r: GateResult) => void };
  const run = async (entries: Entry[]) => {
    const results = await runGate(q, entries.map((e) => e.item), now(), memo);
    entries.forEach((e, i) => e.onAnswer?.(results[i]));
    return results;
  };
  const batched = createBatcher(run, 1, wait);
  return (item, onAnswer) => batched({ item, onAnswer });
}
