/**
 * Secret tokens (API keys, ops tokens, refresh tokens): a recognisable prefix, 190 random
 * bits in base62 and a CRC32 checksum suffix, so a mistyped or truncated secret is refused
 * before any database lookup (the GitHub token format). Stored only as SHA-256.
 */
import { sha256Hex } from "./sha256.ts";

/** The prefix of each kind of secret. */
export const PREFIX = { apiKey: "npl_", opsToken: "nplops_", refresh: "nplrt_" } as const;
export type SecretPrefix = typeof PREFIX[keyof typeof PREFIX];

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** 32 base62 characters = 190.5 bits of entropy. */
const BODY_LENGTH = 32;
/** 62^6 > 2^32, so six characters hold a CRC32. */
const CHECK_LENGTH = 6;
const BODY_RE = new RegExp(`^[0-9A-Za-z]{${BODY_LENGTH + CHECK_LENGTH}}$`);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function base62Fixed(value: number, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

function checksum(prefix: string, body: string): string {
  return base62Fixed(crc32(prefix + body), CHECK_LENGTH);
}

/** Uniform base62 characters from the CSPRNG (rejection sampling: no modulo bias). */
function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

/** A fresh secret with `prefix`. */
export function generateSecret(prefix: SecretPrefix): string {
  const body = randomBase62(BODY_LENGTH);
  return prefix + body + checksum(prefix, body);
}

/** True when `raw` has `prefix`, the right length and alphabet, and a matching checksum. */
export function isWellFormedSecret(raw: string, prefix: SecretPrefix): boolean {
  if (!raw.startsWith(prefix)) return false;
  const rest = raw.slice(prefix.length);
  if (!BODY_RE.test(rest)) return false;
  const body = rest.slice(0, BODY_LENGTH);
  return constantTimeEqual(rest.slice(BODY_LENGTH), checksum(prefix, body));
}

/** The SHA-256 of a secret, hex: the only form a secret is stored in. */
export function hashSecret(raw: string): string {
  return sha256Hex(raw);
}

/** What listings show of a secret: its prefix and the first six characters. */
export function displayPrefix(raw: string): string {
  const at = raw.indexOf("_") + 1;
  return raw.slice(0, at + 6);
}

/**
 * Compares two strings in time independent of where they differ (only the length shows):
 * every UTF-16 unit is compared, with no early exit. Plain JS, because node:crypto's
 * timingSafeEqual costs two encodings and a copy per call on the request path.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
