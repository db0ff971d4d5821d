/**
 * Rate limits in the request path: the `Deps.rateLimit` hook (data and ops classes), the
 * login check the login handler calls with the email, and the background pruning timer.
 */
import { createHash } from "node:crypto";
import { ApiError } from "../lib/problem.ts";
import {
  closestToExhaustion,
  type Policy,
  policyHeader,
  rateLimitHeader,
  roomAtMs,
  slotMs,
  usage,
} from "../lib/ratelimit.ts";
import type { Principal } from "../lib/policy.ts";
import type { Logger } from "../lib/log.ts";
import { errorFields } from "../lib/log.ts";
import { type Db, isUnavailable, type Queryable } from "../db/client.ts";
import type { Settings } from "../db/settings.ts";
import type { SettingKey } from "../lib/settings.ts";
import {
  chargeRateLimitGroups,
  chargeRateLimitWindows,
  type ChargeResult,
  deleteExpiredRateLimitWindows,
  type WindowCharge,
} from "../db/ratelimits.ts";
import { createBatcher } from "../lib/batch.ts";
import type { Ctx, LimitClass, Route } from "./context.ts";

/** The problem type of a 429 (IANA HTTP Problem Types registry). */
export const QUOTA_EXCEEDED_TYPE = "https://iana.org/assignments/http-problem-types#quota-exceeded";

// Settings defaults are typed `unknown`; the ratelimit.* keys are validated whole numbers.
function quotaOf(settings: Settings, key: SettingKey): number {
  return Number(settings.get(key));
}

const MINUTE = 60;
const DAY = 86_400;
const LOGIN_WINDOW = 15 * 60;

/**
 * The windows a request of class `limit` is charged to, keyed `<policy>:<subject>`; empty
 * means unlimited (admins). Login is charged by `checkLoginLimit`, which knows the email.
 */
export function chargesFor(
  limit: LimitClass,
  principal: Principal | null,
  clientIp: string,
  settings: Settings,
): WindowCharge[] {
  if (limit === "login" || principal?.tier === "admin") return [];
  const subject = principal?.subject ?? `ip:${clientIp}`;
  const charge = (name: string, quota: number, windowSeconds: number) => ({
    key: `${name}:${subject}`,
    policy: { name, quota, windowSeconds },
  });
  if (limit === "ops") {
    return [charge("ops-minute", quotaOf(settings, "ratelimit.ops.perMinute"), MINUTE)];
  }
  // Keyed by user, not credential: all of a user's keys and sessions share one budget.
  return [
    charge("sharp-minute", quotaOf(settings, "ratelimit.sharp.perMinute"), MINUTE),
    charge("sharp-day", quotaOf(settings, "ratelimit.sharp.perDay"), DAY),
  ];
}

/** The login windows: per (lowercased email, client IP) and per client IP, 15 minutes each. */
export function loginCharges(email: string, clientIp: string, settings: Settings): WindowCharge[] {
  // The email is hashed so the table holds no addresses.
  const pair = createHash("sha256").update(`${email.trim().toLowerCase()}\n${clientIp}`)
    .digest("hex");
  const policy = (name: string, quota: number): Policy => ({
    name,
    quota,
    windowSeconds: LOGIN_WINDOW,
  });
  return [
    {
      key: `login-email-ip:${pair}`,
      policy: policy("login-email-ip", quotaOf(settings, "ratelimit.login.perEmailIp")),
    },
    {
      key: `login-ip:${clientIp}`,
      policy: policy("login-ip", quotaOf(settings, "ratelimit.login.perIp")),
    },
  ];
}

/** Charges one request to `charges` at `now` through `q`; all windows or none. */
export type Charger = (
  q: Queryable,
  charges: readonly WindowCharge[],
  now: () => number,
) => Promise<ChargeResult>;

const chargeOne: Charger = (q, charges, now) => chargeRateLimitWindows(q, charges, now());

/**
 * A Charger that coalesces the concurrent checks of every user into one statement per tick,
 * grouped by windows; exact, as `chargeRateLimitGroups` says. A batch starts after its
 * requests arrived, so each is charged at a time within its own lifetime.
 *
 * A refusal is remembered until the full windows free a slot: windows only fill up between
 * two slot boundaries (other instances can add, nobody subtracts), so until then the answer
 * is the same refusal without asking the database. The quota is part of the key, so a
 * raised limit applies at once.
 */
export function createCoalescingCharger(): Charger {
  type Item = { keys: string; charges: readonly WindowCharge[]; q: Queryable; now: () => number };
  const charge = createBatcher(async (items: Item[]) => {
    // Grouped by window keys: a key is charged by one group of one statement. Checks of the
    // same tick that saw different quotas (a setting changing) use the first one's.
    const groups = new Map<string, { charges: readonly WindowCharge[]; n: number }>();
    for (const it of items) {
      const g = groups.get(it.keys);
      if (g) g.n++;
      else groups.set(it.keys, { charges: it.charges, n: 1 });
    }
    const results = await chargeRateLimitGroups(items[0].q, [...groups.values()], items[0].now());
    const queues = new Map([...groups.keys()].map((keys, i) => [keys, results[i]]));
    return items.map((it) => queues.get(it.keys)!.shift()!);
  }, 2);
  const refused = new Map<string, { untilMs: number; result: ChargeResult }>();
  const remember = (sig: string, charges: readonly WindowCharge[], r: ChargeResult, at: number) => {
    const untilMs = Math.max(...charges.map((c, i) => roomAtMs(c.policy, r.states[i], at)));
    if (refused.size >= 10_000) refused.clear();
    refused.set(sig, { untilMs, result: r });
  };
  return async (q, charges, now) => {
    const sig = charges.map((c) => `${c.key}|${c.policy.quota}|${slotMs(c.policy)}`).join(",");
    const known = refused.get(sig);
    if (known && now() < known.untilMs) return known.result;
    if (known) refused.delete(sig);
    const keys = charges.map((c) => c.key).join(",");
    const result = await charge({ keys, charges, q, now });
    if (!result.admitted) remember(sig, charges, result, now());
    return result;
  };
}

/**
 * Charges `charges` through `ctx.db` (one statement, all windows or none), sets RateLimit-Policy
 * and RateLimit on the response, and throws the 429 when any window is full.
 */
export async function enforceLimits(
  ctx: Ctx,
  charges: readonly WindowCharge[],
  charge: Charger = chargeOne,
): Promise<void> {
  if (charges.length === 0) return;
  const result = await charge(ctx.db, charges, ctx.deps.now);
  const now = ctx.deps.now();
  const usages = charges.map((c, i) => usage(c.policy, result.states[i], now));
  ctx.responseHeaders.set("ratelimit-policy", policyHeader(charges.map((c) => c.policy)));
  if (result.admitted) {
    ctx.responseHeaders.set("ratelimit", rateLimitHeader(closestToExhaustion(usages)));
    return;
  }
  const violated = usages.filter((u) => u.remaining === 0);
  const worst = closestToExhaustion(violated);
  const retryAfter = Math.max(1, worst.resetSeconds);
  ctx.responseHeaders.set("ratelimit", rateLimitHeader(worst));
  throw new ApiError(
    "quota-exceeded",
    `Rate limit ${
      violated.map((u) => u.policy.name).join(", ")
    } exceeded; retry in ${retryAfter} s`,
    {
      type: QUOTA_EXCEEDED_TYPE,
      headers: { "retry-after": String(retryAfter) },
      extra: { "violated-policies": violated.map((u) => u.policy.name) },
    },
  );
}

/**
 * For the login handler, once it has the email and before it checks the password: charges
 * the per-(email, IP) and per-IP windows together; throws 429 when either is exhausted.
 */
export async function checkLoginLimit(ctx: Ctx, email: string): Promise<void> {
  await enforceLimits(ctx, loginCharges(email, ctx.clientIp, ctx.deps.settings));
}

/**
 * Builds `Deps.rateLimit`. It fails closed: with the database unreachable a limited route
 * answers 503, and the log says so once per outage, not per request.
 */
export function createRateLimit(log: Logger): (ctx: Ctx, route: Route) => Promise<void> {
  const coalesced = createCoalescingCharger();
  let down = false;
  const reachable = () => {
    if (down) log.info("rate limiter: database reachable again");
    down = false;
  };
  return async (ctx, route) => {
    if (!route.limit) return;
    const charges = chargesFor(route.limit, ctx.principal, ctx.clientIp, ctx.deps.settings);
    try {
      // Inside a transaction (idempotent routes) the check must run on it, alone.
      await enforceLimits(ctx, charges, ctx.db === ctx.deps.db ? coalesced : chargeOne);
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
    reachable();
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
