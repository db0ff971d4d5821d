/** Configuration from the environment, validated once at startup. */
import { isEmail } from "./fields.ts";
import { newPasswordProblem } from "./password.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Everything proplab reads from its environment. */
export interface Config {
  port: number;
  hostname: string;
  databaseUrl: string | null;
  dataDir: string;
  jwtSecret: string | null;
  errorsBase: string;
  adminEmail: string | null;
  adminPassword: string | null;
  logLevel: LogLevel;
  trustProxy: number;
  corsOrigins: string[];
  ingestDir: string;
  shutdownGraceMs: number;
  workerEnabled: boolean;
  /** How long a request body may take to arrive in full before a 408 (slow-body defence). */
  bodyTimeoutMs: number;
}

/** A configuration problem: its message is the one line printed before exiting. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function intVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function databaseUrlVar(env: Env): string | null {
  const raw = env.DATABASE_URL;
  if (raw === undefined || raw === "") return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      "DATABASE_URL is not a valid URL (expected postgres://user@host:port/db)",
    );
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql://`);
  }
  return raw;
}

function baseUrlVar(env: Env): string {
  const raw = env.ERRORS_BASE ?? "https://nbaproplab.com/errors";
  try {
    new URL(raw);
  } catch {
    throw new ConfigError(`ERRORS_BASE must be an absolute URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, "");
}

function logLevelVar(env: Env): LogLevel {
  const raw = (env.LOG_LEVEL ?? "info").toLowerCase();
  if (raw === "debug" || raw === "info" || raw === "warn" || raw === "error") return raw;
  throw new ConfigError(
    `LOG_LEVEL must be one of debug, info, warn, error, got "${env.LOG_LEVEL}"`,
  );
}

function jwtSecretVar(env: Env): string | null {
  const raw = env.JWT_SECRET;
  if (raw === undefined || raw === "") return null;
  if (raw.length < 32) throw new ConfigError("JWT_SECRET must be at least 32 characters long");
  return raw;
}

function adminVars(env: Env): { adminEmail: string | null; adminPassword: string | null } {
  const adminEmail = env.ADMIN_EMAIL || null;
  const adminPassword = env.ADMIN_PASSWORD || null;
  if ((adminEmail === null) !== (adminPassword === null)) {
    throw new ConfigError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together");
  }
  if (adminEmail !== null && !isEmail(adminEmail)) {
    throw new ConfigError("ADMIN_EMAIL is not an email address");
  }
  const problem = adminPassword === null ? null : newPasswordProblem(adminPassword);
  if (problem) throw new ConfigError(`ADMIN_PASSWORD ${problem}`);
  return { adminEmail, adminPassword };
}

const SWITCH: Record<string, boolean> = {
  on: true,
  true: true,
  yes: true,
  "1": true,
  off: false,
  false: false,
  no: false,
  "0": false,
};

function switchVar(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const on = SWITCH[raw.toLowerCase()];
  if (on === undefined) throw new ConfigError(`${name} must be on or off, got "${raw}"`);
  return on;
}

function corsVar(env: Env): string[] {
  const origins = (env.CORS_ORIGINS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const o of origins) {
    let ok = o === "*";
    try {
      const u = new URL(o);
      ok ||= (u.protocol === "https:" || u.protocol === "http:") && u.origin === o;
    } catch { /* not a URL */ }
    if (!ok) {
      throw new ConfigError(
        `CORS_ORIGINS must list origins such as https://app.example.com (or *), got "${o}"`,
      );
    }
  }
  return origins;
}

/**
 * Reads and validates the configuration; throws one ConfigError naming every bad variable
 * ("; " between them), so an operator fixes them in one go.
 */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const read = <T>(f: () => T, fallback: T): T => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err.message);
      return fallback;
    }
  };
  const config: Config = {
    port: read(() => intVar(env, "PORT", 8000, 0, 65535), 0),
    hostname: env.HOST || "0.0.0.0",
    databaseUrl: read(() => databaseUrlVar(env), null),
    dataDir: env.DATA_DIR || "./data",
    jwtSecret: read(() => jwtSecretVar(env), null),
    errorsBase: read(() => baseUrlVar(env), ""),
    ...read(() => adminVars(env), { adminEmail: null, adminPassword: null }),
    logLevel: read(() => logLevelVar(env), "info"),
    trustProxy: read(() => intVar(env, "TRUST_PROXY", 0, 0, 10), 0),
    corsOrigins: read(() => corsVar(env), []),
    ingestDir: env.INGEST_DIR || "./ingest",
    shutdownGraceMs: read(() => intVar(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000), 0),
    workerEnabled: read(() => switchVar(env, "WORKER", true), false),
    bodyTimeoutMs: read(() => intVar(env, "BODY_TIMEOUT_MS", 30_000, 100, 600_000), 0),
  };
  if (problems.length) throw new ConfigError(problems.join("; "));
  return config;
}
