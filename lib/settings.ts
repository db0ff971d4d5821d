/** The run-time settings schema: every key, its default, description and validation. */

/** One setting: its default, what it means, and how a new value is checked. */
export interface SettingSpec {
  default: unknown;
  description: string;
  /** Returns an error message for an invalid value, or null. */
  validate(value: unknown): string | null;
}

function intSetting(def: number, min: number, max: number, description: string): SettingSpec {
  return {
    default: def,
    description,
    validate: (v) =>
      typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
        ? null
        : `must be a whole number from ${min} to ${max}`,
  };
}

function boolSetting(def: boolean, description: string): SettingSpec {
  return {
    default: def,
    description,
    validate: (v) => typeof v === "boolean" ? null : "must be true or false",
  };
}

function stringSetting(def: string, description: string, ok: (s: string) => boolean): SettingSpec {
  return {
    default: def,
    description,
    validate: (v) => typeof v === "string" && ok(v) ? null : "is not an accepted value",
  };
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const MAX = 1_000_000_000;

/** Every run-time setting. Datasets for freshness are `picks` and `results`. */
export const SETTINGS = {
  "ratelimit.sharp.perMinute": intSetting(
    60,
    1,
    MAX,
    "Data API requests a sharp user may make per minute",
  ),
  "ratelimit.sharp.perDay": intSetting(
    5000,
    1,
    MAX,
    "Data API requests a sharp user may make per day",
  ),
  "ratelimit.login.perEmailIp": intSetting(
    10,
    1,
    MAX,
    "Login attempts per (email, client IP) per 15 minutes",
  ),
  "ratelimit.login.perIp": intSetting(100, 1, MAX, "Login attempts per client IP per 15 minutes"),
  "ratelimit.ops.perMinute": intSetting(600, 1, MAX, "Requests an ops token may make per minute"),
  "signup.enabled": boolSetting(true, "Whether POST /auth/signup accepts new users"),
  "idempotency.retentionHours": intSetting(
    24,
    1,
    24 * 30,
    "How long stored idempotent responses are kept",
  ),
  "idempotency.lockTimeoutSeconds": intSetting(
    60,
    1,
    3600,
    "After how long an in-progress idempotency key left by a crashed request is released",
  ),
  "freshness.picks.maxAgeMinutes": intSetting(
    24 * 60,
    1,
    60 * 24 * 30,
    "Age after which the picks dataset is stale",
  ),
  "freshness.results.maxAgeMinutes": intSetting(
    24 * 60,
    1,
    60 * 24 * 30,
    "Age after which the results dataset is stale",
  ),
  "data.timezone": stringSetting(
    "America/New_York",
    "Time zone that decides what 'today' is for /data/picks/today",
    validTimeZone,
  ),
} satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;

/** True when `key` names a known setting. */
export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key);
}
