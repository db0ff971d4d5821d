/**
 * What the rate limiter knows about refusals: the refusals remembered until a full window
 * frees a slot, and the 429 answer of each, made again only when it reads differently.
 */
import { ApiError } from "../lib/problem.ts";
import {
  closestToExhaustion,
  type Policy,
  rateLimitHeader,
  roomAt,
  roomAtMs,
  secondsFrom,
  type Usage,
} from "../lib/ratelimit.ts";
import type { ChargeResult, WindowCharge } from "../db/ratelimits.ts";

/** The problem type of a 429 (IANA HTTP Problem Types registry). */
export const QUOTA_EXCEEDED_TYPE = "https://iana.org/assignments/http-problem-types#quota-exceeded";

/**
 * Refusals remembered until the full windows free a slot: windows only fill up between two
 * slot boundaries (other instances can add, nobody subtracts), so until then the answer is
 * the same refusal without charging again. The quota is part of the key, so a raised limit
 * applies at once.
 */
export interface RefusalMemory {
  /** `sig`: the windowsSignature of the charges (routes/charges.ts). */
  recall(sig: string, nowMs: number): ChargeResult | null;
  remember(
    sig: string,
    charges: readonly WindowCharge[],
    result: ChargeResult,
    nowMs: number,
  ): void;
}

export function createRefusalMemory(max = 10_000): RefusalMemory {
  const refused = new Map<string, { untilMs: number; result: ChargeResult }>();
  return {
    recall(sig, nowMs) {
      const known = refused.get(sig);
      if (known && nowMs < known.untilMs) return known.result;
      if (known) refused.delete(sig);
      return null;
    },
    remember(sig, charges, result, nowMs) {
      const untilMs = Math.max(
        ...charges.map((c, i) => roomAtMs(c.policy, result.states[i], nowMs)),
      );
      if (refused.size >= max) refused.clear();
      refused.set(sig, { untilMs, result });
    },
  };
}

/**
 * The 429 of a refused request, made again only when it reads differently: requests refused
 * on the same result (a remembered refusal, or a lease's) share it while their Retry-After
 * is the same second, and with it the rendered body (lib/problem.ts).
 */
export interface RefusalAnswers {
  answer(
    charges: readonly WindowCharge[],
    result: ChargeResult,
    nowMs: number,
  ): { field: string; error: ApiError };
}

interface Refusal {
  /** The full windows and when each has room again. */
  full: { policy: Policy; atMs: number }[];
  last: { worst: Usage; field: string; error: ApiError } | null;
}

export function createRefusalAnswers(): RefusalAnswers {
  const known = new WeakMap<ChargeResult, Refusal>();
  const fullOf = (charges: readonly WindowCharge[], result: ChargeResult) =>
    charges.flatMap((c, i) => {
      const atMs = roomAt(c.policy, result.states[i], result.unseen);
      return atMs === null ? [] : [{ policy: c.policy, atMs }];
    });
  return {
    answer(charges, result, nowMs) {
      let refusal = known.get(result);
      if (!refusal) known.set(result, refusal = { full: fullOf(charges, result), last: null });
      const violated = refusal.full.map(({ policy, atMs }) => ({
        policy,
        remaining: 0,
        resetSeconds: secondsFrom(nowMs, atMs),
      }));
      const worst = closestToExhaustion(violated);
      const last = refusal.last;
      if (last?.worst.policy === worst.policy && last.worst.resetSeconds === worst.resetSeconds) {
        return last;
      }
      const field = rateLimitHeader(worst);
      return refusal.last = { worst, field, error: quotaExceeded(violated, worst) };
    },
  };
}

function quotaExceeded(violated: Usage[], worst: Usage): ApiError {
  const retryAfter = Math.max(1, worst.resetSeconds);
  const names = violated.map((u) => u.policy.name);
  return new ApiError(
    "quota-exceeded",
    `Rate limit ${names.join(", ")} exceeded; retry in ${retryAfter} s`,
    {
      type: QUOTA_EXCEEDED_TYPE,
      headers: { "retry-after": String(retryAfter) },
      extra: { "violated-policies": names },
    },
  );
}
