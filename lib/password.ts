/**
 * Password hashing with scrypt (node:crypto, run on the thread pool so the event loop stays
 * free) in a self-describing format: `$scrypt$ln=17,r=8,p=1$<salt b64>$<hash b64>`.
 * Parameters live in the string, so they can be raised and old hashes upgraded at login.
 */
import { scrypt, timingSafeEqual } from "node:crypto";
import { createBoundedPool, PoolFull } from "./async.ts";
import { ApiError } from "./problem.ts";

/** scrypt cost parameters: N = 2^ln. */
export interface ScryptParams {
  ln: number;
  r: number;
  p: number;
}

/** OWASP's scrypt recommendation (N=2^17, r=8, p=1). */
export const DEFAULT_SCRYPT: ScryptParams = { ln: 17, r: 8, p: 1 };

/** A new password's length, in characters (signup, create-admin, ADMIN_PASSWORD alike). */
export const PASSWORD_MIN = 10;
/** The longest password accepted anywhere, login included. */
export const PASSWORD_MAX = 1024;

/** What is wrong with `password` as a new password ("must be …"); null when nothing. */
export function newPasswordProblem(password: string): string | null {
  if ([...password].length < PASSWORD_MIN) return `must be at least ${PASSWORD_MIN} characters`;
  if (password.length > PASSWORD_MAX) return `must be at most ${PASSWORD_MAX} characters`;
  return null;
}

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const FORMAT_RE =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** Hashes and verifies passwords; injected through deps so tests can count calls. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Verifies against `stored`; null `stored` verifies against a dummy so timing matches. */
  verify(password: string, stored: string | null): Promise<boolean>;
  /** True when `stored` was made with other parameters than the current ones. */
  needsRehash(stored: string): boolean;
}

/** The key derivation a hasher runs: scrypt by default; tests wrap it to count calls. */
export type Kdf = (password: string, salt: Uint8Array, params: ScryptParams) => Promise<Uint8Array>;

/** scrypt on node's thread pool. */
export const scryptKdf: Kdf = (password, salt, params) => {
  const N = 2 ** params.ln;
  // 128·N·r bytes are needed; leave headroom above node's 32 MiB default.
  const maxmem = 256 * N * params.r;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFC"), salt, KEY_LENGTH, { N, r: params.r, p: params.p, maxmem }, (
      err,
      key,
    ) => err ? reject(err) : resolve(new Uint8Array(key)));
  });
};

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

interface Parsed {
  params: ScryptParams;
  salt: Uint8Array;
  key: Uint8Array;
}

function parseHash(stored: string): Parsed | null {
  const m = FORMAT_RE.exec(stored);
  if (!m) return null;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (params.ln < 10 || params.ln > 22 || params.r < 1 || params.p < 1) return null;
  return { params, salt: unb64(m[4]), key: unb64(m[5]) };
}

function formatHash(params: ScryptParams, salt: Uint8Array, key: Uint8Array): string {
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/**
 * How many derivations run at once, and how many may wait. scrypt at N=2^17 takes 0.3 to
 * 0.5 s of one core (by host): unbounded, 20 logins a second would need 6 to 10 cores and
 * starve every other request. One fewer than the cores (at least one) leaves a core for the rest;
 * a login that would wait behind more than eight per running derivation (about 4 s) is
 * refused at once with 503 and Retry-After instead.
 */
export interface HashingLimits {
  concurrency: number;
  queueLimit: number;
}

export function defaultHashingLimits(cores = navigator.hardwareConcurrency): HashingLimits {
  const concurrency = Math.max(1, cores - 1);
  return { concurrency, queueLimit: concurrency * 8 };
}

/** A scrypt hasher with `params` for new hashes, deriving keys with `derive` within `limits`. */
export function createPasswordHasher(
  params: ScryptParams = DEFAULT_SCRYPT,
  derive: Kdf = scryptKdf,
  limits: HashingLimits = defaultHashingLimits(),
): PasswordHasher {
  const pool = createBoundedPool(limits.concurrency, limits.queueLimit);
  const kdf: Kdf = async (password, salt, p) => {
    try {
      return await pool.run(() => derive(password, salt, p));
    } catch (err) {
      if (!(err instanceof PoolFull)) throw err;
      throw new ApiError("busy", "Too many password checks are waiting; retry shortly", {
        headers: { "retry-after": "1" },
      });
    }
  };
  // Verifying an unknown email costs one full scrypt with the current parameters.
  const dummy = formatHash(params, new Uint8Array(SALT_LENGTH), new Uint8Array(KEY_LENGTH));
  return {
    async hash(password) {
      const salt = crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
      return formatHash(params, salt, await kdf(password, salt, params));
    },
    async verify(password, stored) {
      const parsed = parseHash(stored ?? dummy) ?? parseHash(dummy)!;
      const key = await kdf(password, parsed.salt, parsed.params);
      return stored !== null && key.byteLength === parsed.key.byteLength &&
        timingSafeEqual(key, parsed.key);
    },
    needsRehash(stored) {
      const parsed = parseHash(stored);
      return parsed === null || parsed.params.ln !== params.ln || parsed.params.r !== params.r ||
        parsed.params.p !== params.p;
    },
  };
}
