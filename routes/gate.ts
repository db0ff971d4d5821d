/**
 * The request gate at run time: every request's database work of one tick (credential
 * checks, rate-limit charges, data versions) goes in one statement (db/gate.ts). A batch
 * always starts after its requests arrived, so what it reads is as fresh as one query each.
 */
import type { Queryable } from "../db/client.ts";
import { type GateItem, type GateResult, runGate } from "../db/gate.ts";
import { createBatcher } from "../lib/batch.ts";

/** Sends one request's item through the next gate statement. */
export type Gate = (item: GateItem) => Promise<GateResult>;

/** A gate over `db`; up to two statements in flight, the rest queue for the next one. */
export function createGate(db: Queryable, now: () => number): Gate {
  return createBatcher((items: GateItem[]) => runGate(db, items, now()), 2);
}
