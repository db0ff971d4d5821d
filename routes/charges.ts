/**
 * Which rate-limit windows a request is charged to: per class (data, ops) by subject, and
 * the login windows by email and client IP. Pure, given the settings.
 */
import { type Policy, policyHeader, slotMs } from "../lib/ratelimit.ts";
import type { Principal } from "../lib/policy.ts";
import { sha256Hex } from "../lib/sha256.ts";
import type { Settings } from "../db/settings.ts";
import type { SettingKey } from "../lib/settings.ts";
import type { WindowCharge } from "../db/ratelimits.ts";
import type { LimitClass } from "./context.ts";

// Settings defaults are typed `unknown`; the ratelimit.* keys are validated whole numbers.
function quotaOf(settings: Settings, key: SettingKey): number {
  return Number(settings.get(key));
}

const MINUTE = 60;
const DAY = 86_400;
const LOGIN_WINDOW = 15 * 60;

interface WindowDef {
  name: string;
  /** The setting that holds the quota. */
  quota: SettingKey;
  windowSeconds: number;
}

// Keyed by user, not credential: all of a user's keys and sessions share one budget.
const CLASS_WINDOWS: Record<"data" | "ops", readonly WindowDef[]> = {
  data: [
    { name: "sharp-minute", quota: "ratelimit.sharp.perMinute", windowSeconds: MINUTE },
    { name: "sharp-day", quota: "ratelimit.sharp.perDay", windowSeconds: DAY },
  ],
  ops: [{ name: "ops-minute", quota: "ratelimit.ops.perMinute", windowSeconds: MINUTE }],
};

const unlimited = (limit: LimitClass, principal: Principal | null) =>
  limit === "login" || principal?.tier === "admin";

const subjectOf = (principal: Principal | null, clientIp: string) =>
  principal?.subject ?? `ip:${clientIp}`;

function build(defs: readonly WindowDef[], subject: string, settings: Settings): WindowCharge[] {
  return defs.map((w) => ({
    key: `${w.name}:${subject}`,
    policy: { name: w.name, quota: quotaOf(settings, w.quota), windowSeconds: w.windowSeconds },
  }));
}

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
  if (unlimited(limit, principal)) return [];
  return build(CLASS_WINDOWS[limit as "data" | "ops"], subjectOf(principal, clientIp), settings);
}

/** Names windows and their quotas: a changed quota is another signature. */
export function windowsSignature(charges: readonly WindowCharge[]): string {
  return charges.map((c) => `${c.key}|${c.policy.quota}|${slotMs(c.policy)}`).join(",");
}

/** A request's windows as the rate limiter uses them. */
export interface Charges {
  list: readonly WindowCharge[];
  /** `windowsSignature(list)`. */
  sig: string;
  policies: readonly Policy[];
  /** The RateLimit-Policy field value of `policies`. */
  policyField: string;
}

const NONE: Charges = { list: [], sig: "", policies: [], policyField: "" };

/**
 * `chargesFor` with its signature, remembered per class and subject while the settings stay
 * the same (at most `max` subjects a class; cleared whole when full). Every request of a
 * user then brings the same key and signature strings, whose hashes are computed once, so
 * the lease book and the refusal memory find them at once; and nothing is built per request.
 */
export function createChargeMemo(max = 10_000) {
  type Known = { version: number; charges: Charges };
  const memo = { data: new Map<string, Known>(), ops: new Map<string, Known>() };
  return (
    limit: LimitClass,
    principal: Principal | null,
    clientIp: string,
    settings: Settings,
  ): Charges => {
    if (unlimited(limit, principal)) return NONE;
    const bySubject = memo[limit as "data" | "ops"];
    const subject = subjectOf(principal, clientIp);
    const known = bySubject.get(subject);
    if (known?.version === settings.version) return known.charges;
    const list = chargesFor(limit, principal, clientIp, settings);
    const policies = list.map((c) => c.policy);
    const charges = {
      list,
      sig: windowsSignature(list),
      policies,
      policyField: policyHeader(policies),
    };
    if (bySubject.size >= max) bySubject.clear();
    bySubject.set(subject, { version: settings.version, charges });
    return charges;
  };
}

const loginPolicy = (name: string, quota: number): Policy => ({
  name,
  quota,
  windowSeconds: LOGIN_WINDOW,
});

/** The client IP's `login-ip` window: logins and signups from one address share it. */
export function loginIpCharge(clientIp: string, settings: Settings): WindowCharge {
  return {
    key: `login-ip:${clientIp}`,
    policy: loginPolicy("login-ip", quotaOf(settings, "ratelimit.login.perIp")),
  };
}

/** The login windows: per (lowercased email, client IP) and per client IP, 15 minutes each. */
export function loginCharges(email: string, clientIp: string, settings: Settings): WindowCharge[] {
  // The email is hashed so the table holds no addresses. Lowercased, then stripped of
  // combining marks: JS lowercases "İ" to "i" + a dot that the database's lower() drops, so
  // "alİce@…" would otherwise count apart from "alice@…" while logging into the same account.
  const folded = email.trim().toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
  const pair = sha256Hex(`${folded}\n${clientIp}`);
  return [
    {
      key: `login-email-ip:${pair}`,
      policy: loginPolicy("login-email-ip", quotaOf(settings, "ratelimit.login.perEmailIp")),
    },
    loginIpCharge(clientIp, settings),
  ];
}
