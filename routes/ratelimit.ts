/**
 * Rate limits in the request path: the `Deps.rateLimit` hook (data and ops classes), the
 * login check the login handler calls with the email, and the background pruning timer.
 */
import { ApiError } from "../lib/problem.ts";
import { closestToExhaustion, policyHeader, rateLimitHeader, usage } from "../lib/ratelimit.ts";
import { type CredentialRef, StalePrincipal } from "../lib/policy.ts";
import type { Gate } from "./gate.ts";
import { createLeaseBook } from "../lib/lease.ts";
import type { Logger } from "../lib/log.ts";
import { errorFields } from "../lib/log.ts";
import { type Db, isUnavailable, type Queryable } from "../db/client.ts";
import {
  chargeRateLimitWindows,
  type ChargeResult,
  deleteExpiredRateLimitWindows,
  type WindowCharge,
} from "../db/ratelimits.ts";
import type { Ctx, Route } from "./context.ts";
import { type Charges, createChargeMemo, loginCharges, loginIpCharge } from "./charges.ts";
import { createRefusalAnswers, createRefusalMemory, type RefusalAnswers } from "./refusals.ts";

/** Charges one request to `charges` at `now` through `q`; all windows or none. */
export type Charger = (
  q: Queryable,
  charges: readonly WindowCharge[],
  now: () => number,
) => Promise<ChargeResult>;

const chargeOne: Charger = (q, charges, now) => chargeRateLimitWindows(q, charges, now());

/**
 * Charges `charges` through `ctx.db` (one statement, all windows or none), sets RateLimit-Policy
 * and RateLimit on the response, and throws the 429 when any window is full.
 */
export async function enforceLimits(
  ctx: Ctx,
  charges: readonly WindowCharge[],
  charge: Charger = chargeOne,
): Promise<void> {
  const refusal = await chargeThrough(ctx, charges, charge);
  if (refusal) throw refusal;
}

/** `enforceLimits`, returning the 429 rather than throwing it. */
async function chargeThrough(
  ctx: Ctx,
  charges: readonly WindowCharge[],
  charge: Charger = chargeOne,
): Promise<ApiError | null> {
  if (charges.length === 0) return null;
  return applyCharge(ctx, charges, await charge(ctx.db, charges, ctx.deps.now));
}

/**
 * Sets the RateLimit fields of `result` on the response; returns the 429 when refused.
 * `policyField`: the RateLimit-Policy value of `charges`, when the caller has it already.
 */
function applyCharge(
  ctx: Ctx,
  charges: readonly WindowCharge[],
  result: ChargeResult,
  refusals: RefusalAnswers = createRefusalAnswers(),
  policyField = policyHeader(charges.map((c) => c.policy)),
): ApiError | null {
  const now = ctx.deps.now();
  ctx.responseHeaders.set("ratelimit-policy", policyField);
  if (result.admitted) {
    const usages = charges.map((c, i) => usage(c.policy, result.states[i], now, result.unseen));
    ctx.responseHeaders.set("ratelimit", rateLimitHeader(closestToExhaustion(usages)));
    return null;
  }
  const { field, error } = refusals.answer(charges, result, now);
  ctx.responseHeaders.set("ratelimit", field);
  return error;
}

/**
 * For the signup handler, first thing: each attempt counts against the client IP's
 * `login-ip` window, the one logins share, so one address cannot sign up (and hash) without
 * bound nor store endless answers under fresh Idempotency-Keys. Throws 429 when it is full.
 */
export async function checkSignupLimit(ctx: Ctx): Promise<void> {
  await enforceLimits(ctx, [loginIpCharge(ctx.clientIp, ctx.deps.settings)]);
}

/**
 * For the login handler, once it has the email and before it checks the password: charges
 * the per-(email, IP) and per-IP windows together; throws 429 when either is exhausted.
 */
export async function checkLoginLimit(ctx: Ctx, email: string): Promise<void> {
  await enforceLimits(ctx, loginCharges(email, ctx.clientIp, ctx.deps.settings));
}

/** What the rate limiter needs besides the request: the gate and the identity service. */
export interface RateLimitDeps {
  gate: Gate;
  /** Drops a recalled credential that no longer holds. */
  forget(ref: CredentialRef): void;
  /** Records the use of a credential the gate has just checked. */
  touch(kind: "apiKey" | "opsToken", id: string, at: number): void;
}

/**
 * Builds `Deps.rateLimit`. On the pool, the check goes through the request gate: one
 * statement per tick charges every concurrent request (exact: db/gate.ts), checks the
 * recalled credentials in it, and reads the data versions for the handler. Inside a
 * transaction (idempotent routes) it runs on the transaction, alone.
 *
 * It fails closed: with the database unreachable a limited route answers 503, and the log
 * says so once per outage, not per request.
 */
export function createRateLimit(
  log: Logger,
  gated: RateLimitDeps,
): (ctx: Ctx, route: Route) => Promise<ApiError | null> {
  const memory = createRefusalMemory();
  const refusals = createRefusalAnswers();
  const leases = createLeaseBook();
  const chargesOf = createChargeMemo();
  let down = false;
  const reachable = () => {
    if (down) log.info("rate limiter: database reachable again");
    down = false;
  };
  // Answered without charging now: a unit of this user's lease, or a refusal remembered. A
  // lease's units are counted already, so one left over is used even if a refusal came since.
  const charged = (sig: string, now: number) => leases.arrive(sig, now) ?? memory.recall(sig, now);
  // Users whose charge is on its way, with the requests that arrived meanwhile: they wait for
  // what it brings (a lease, or a refusal to remember) instead of charging again. Without
  // this, after each slot boundary every request of a user until its renewal came back
  // charged, and brought a lease, of its own. They are released as the statement answers,
  // before the next one is built (Gate's onAnswer), so they can still join that one.
  const onTheirWay = new Map<string, (() => void)[]>();
  const release = (sig: string, waiting: (() => void)[]) => {
    if (onTheirWay.get(sig) !== waiting) return;
    onTheirWay.delete(sig);
    for (const go of waiting) go();
  };
  const record = (c: Charges, charge: ChargeResult | null, leased: number, now: number) => {
    if (!charge) return;
    leases.grant(c.sig, c.policies, charge.states, leased);
    if (!charge.admitted) memory.remember(c.sig, c.list, charge, now);
  };
  const throughGate = async (ctx: Ctx, c: Charges): Promise<ApiError | null> => {
    const { list: charges, sig, policies, policyField } = c;
    const apply = (result: ChargeResult) =>
      applyCharge(ctx, charges, result, refusals, policyField);
    const now = ctx.deps.now();
    // A recalled principal to check: the one resolved earlier, which it stands for.
    const check = ctx.principal?.recalledFrom ?? null;
    let result = charges.length ? charged(sig, now) : null;
    const waiting = result ? undefined : onTheirWay.get(sig);
    if (waiting) {
      await new Promise<void>((go) => waiting.push(go));
      const later = ctx.deps.now();
      result = leases.take(sig, later) ?? memory.recall(sig, later);
    }
    if (result && !check) return apply(result);
    const charging = !result && charges.length > 0;
    const mine = charging && !onTheirWay.has(sig) ? [] : null;
    if (mine) onTheirWay.set(sig, mine);
    let r;
    try {
      r = await gated.gate(
        {
          ref: check?.ref ?? null,
          expect: check ? { userId: check.userId, tier: check.tier } : null,
          charges: charging ? charges : [],
          extra: charging ? leases.extra(sig, policies, now) : 0,
        },
        charging
          ? (answer) => {
            record(c, answer.charge, answer.leased, ctx.deps.now());
            if (mine) release(sig, mine);
          }
          : undefined,
      );
    } finally {
      if (mine) release(sig, mine);
    }
    if (check && !r.verified) {
      if (result?.admitted) leases.giveBack(sig, result);
      gated.forget(check.ref!);
      throw new StalePrincipal();
    }
    if (check) {
      ctx.principal = check;
      if (check.kind !== "jwt") gated.touch(check.kind, check.credentialId, now);
    }
    ctx.versions = r.versions;
    if (r.charge) result = r.charge;
    return result ? apply(result) : null;
  };
  return async (ctx, route) => {
    if (!route.limit) return null;
    const charges = chargesOf(route.limit, ctx.principal, ctx.clientIp, ctx.deps.settings);
    try {
      let refusal = null;
      if (ctx.db !== ctx.deps.db) refusal = await chargeThrough(ctx, charges.list);
      else if (charges.list.length || ctx.principal?.recalledFrom) {
        refusal = await throughGate(ctx, charges);
      }
      reachable();
      return refusal;
    } catch (err) {
      if (!isUnavailable(err)) {
        reachable();
        throw err;
      }
      if (!down) log.error("rate limiter: database unavailable, failing closed", errorFields(err));
      down = true;
      throw new ApiError("database-unavailable", "The database is unavailable; retry shortly", {
        headers: { "retry-after": "2" },
      });
    }
  };
}

/** A background job that can be stopped. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** Deletes expired window rows every `everyMs` so the table does not grow without bound. */
export function startRateLimitPruner(
  db: Db,
  log: Logger,
  now: () => number,
  everyMs = 60_000,
): Stoppable {
  let running: Promise<void> = Promise.resolve();
  const prune = async () => {
    try {
      const n = await deleteExpiredRateLimitWindows(db, now());
      if (n) log.debug("rate-limit windows pruned", { rows: n });
    } catch (err) {
      log.debug("rate-limit pruning failed", errorFields(err));
    }
  };
  const timer = setInterval(() => {
    running = running.then(prune);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
