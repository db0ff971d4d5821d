/**
 * HS256 access tokens (RFC 7519) via node:crypto. Verification pins the algorithm, requires a
 * known `kid`, compares the HMAC-SHA-256 in constant time (timingSafeEqual), then checks the
 * claim types and `exp`/`nbf`/`iat` with a small clock skew. The keyring remembers tokens
 * whose signature held: a repeat skips the HMAC, never the key and time checks.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { type Tier, TIERS } from "./policy.ts";

/** Access tokens live 15 minutes. */
export const ACCESS_TTL_S = 15 * 60;
/** Tolerated clock difference between instances, in seconds. */
export const CLOCK_SKEW_S = 30;

/** The claims of a proplab access token. */
export interface AccessClaims {
  sub: string;
  sid: string;
  tier: Tier;
  iat: number;
  nbf: number;
  exp: number;
}

/** One signing key as stored: retired keys still verify until their last token expires. */
export interface KeyMaterial {
  kid: string;
  secret: Uint8Array<ArrayBuffer>;
  createdAt: number;
  retiredAt: number | null;
}

/** Why a token was refused (for the log and tests; callers answer one 401 for all). */
export type JwtFailure =
  | "malformed"
  | "algorithm"
  | "unknown-kid"
  | "signature"
  | "claims"
  | "expired"
  | "not-yet-valid";

/** A refused token. */
export class JwtError extends Error {
  constructor(readonly reason: JwtFailure) {
    super(`access token refused: ${reason}`);
    this.name = "JwtError";
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });
const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** base64url without padding. */
export function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

// Only the canonical spelling: a last character whose unused bits are set decodes to the
// same bytes, and would let one token be written several ways.
function unb64url(text: string): Uint8Array<ArrayBuffer> {
  if (!SEGMENT_RE.test(text)) throw new JwtError("malformed");
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.fromBase64(text, { alphabet: "base64url" });
  } catch {
    throw new JwtError("malformed");
  }
  if (b64url(bytes) !== text) throw new JwtError("malformed");
  return bytes;
}

function jsonSegment(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(dec.decode(unb64url(text)));
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
  } catch (err) {
    if (err instanceof JwtError) throw err;
  }
  throw new JwtError("malformed");
}

function hs256(secret: Uint8Array, input: string): Uint8Array {
  return createHmac("sha256", secret).update(input).digest();
}

/** Signs `claims` with the key bytes `secret`, naming it `kid` in the header. */
export function signJwt(claims: AccessClaims, kid: string, secret: Uint8Array): string {
  const header = b64url(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT", kid })));
  const payload = b64url(enc.encode(JSON.stringify(claims)));
  return `${header}.${payload}.${b64url(hs256(secret, `${header}.${payload}`))}`;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

function parseClaims(p: Record<string, unknown>): AccessClaims {
  const typed = typeof p.sub === "string" && UUID_RE.test(p.sub) &&
    typeof p.sid === "string" && UUID_RE.test(p.sid) &&
    typeof p.tier === "string" && (TIERS as readonly string[]).includes(p.tier) &&
    isInt(p.iat) && isInt(p.exp) && isInt(p.nbf);
  if (!typed) throw new JwtError("claims");
  return p as unknown as AccessClaims;
}

function checkTimes(claims: AccessClaims, nowMs: number): AccessClaims {
  const nowS = Math.floor(nowMs / 1000);
  if (claims.exp <= nowS - CLOCK_SKEW_S) throw new JwtError("expired");
  if (claims.nbf > nowS + CLOCK_SKEW_S || claims.iat > nowS + CLOCK_SKEW_S) {
    throw new JwtError("not-yet-valid");
  }
  return claims;
}

/** A token whose signature held: the key that signed it and its typed claims. */
interface Signed {
  kid: string;
  claims: AccessClaims;
}

async function verifySignature(
  token: string,
  secretFor: (kid: string) => Promise<Uint8Array | null>,
): Promise<Signed> {
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => p === "")) throw new JwtError("malformed");
  const header = jsonSegment(parts[0]);
  // Pin the algorithm: `none`, RS256 (key confusion) and anything else are refused.
  if (header.alg !== "HS256") throw new JwtError("algorithm");
  if (header.typ !== undefined && header.typ !== "JWT") throw new JwtError("malformed");
  if (typeof header.kid !== "string" || header.kid.length > 64) throw new JwtError("unknown-kid");
  const presented = unb64url(parts[2]);
  if (!SEGMENT_RE.test(parts[1])) throw new JwtError("malformed");
  const secret = await secretFor(header.kid);
  if (!secret) throw new JwtError("unknown-kid");
  const expected = hs256(secret, `${parts[0]}.${parts[1]}`);
  // Constant time over equal lengths; a wrong length is refused without comparing.
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new JwtError("signature");
  }
  // The payload is parsed only once the signature holds.
  return { kid: header.kid, claims: parseClaims(jsonSegment(parts[1])) };
}

/**
 * Verifies a compact JWS and returns its claims; throws JwtError. `secretFor` returns the key
 * bytes of a `kid`, or null when there is none.
 */
export async function verifyJwt(
  token: string,
  secretFor: (kid: string) => Promise<Uint8Array | null>,
  nowMs: number,
): Promise<AccessClaims> {
  return checkTimes((await verifySignature(token, secretFor)).claims, nowMs);
}

/** Whom an access token is issued to. */
export type Subject = { userId: string; sessionId: string; tier: Tier };

/** Signs with the current key and verifies with every still-valid one. */
export interface Keyring {
  /** Issues a 15-minute access token for a session, signed with the current key. */
  issue(subject: Subject): Promise<string>;
  verify(token: string): Promise<AccessClaims>;
  /** Re-reads the keys (after a rotation elsewhere). */
  reload(): Promise<void>;
  currentKid(): string;
}

// An unknown kid triggers a reload at most this often, so forged kids cannot flood the db.
const RELOAD_THROTTLE_MS = 1000;
// Tokens remembered with a signature that held; only validly signed tokens get in, and the
// whole map is dropped when full, so memory stays bounded (a few MB).
const SIGNED_CACHE_MAX = 10_000;

/**
 * A keyring over `load` (the stored keys). A token seen before skips the HMAC, but its key
 * must still be usable and its times are checked against `now()` on every call.
 */
export async function createKeyring(
  load: () => Promise<KeyMaterial[]>,
  now: () => number,
): Promise<Keyring> {
  const signed = new Map<string, Signed>();
  let keys: KeyMaterial[] = [];
  let lastReload = -Infinity;
  const reload = async () => {
    lastReload = now();
    keys = await load();
    signed.clear();
  };
  await reload();
  const usable = (k: KeyMaterial) =>
    k.retiredAt === null || now() < k.retiredAt + (ACCESS_TTL_S + CLOCK_SKEW_S) * 1000;
  const usableSecret = (kid: string) => {
    const k = keys.find((x) => x.kid === kid);
    return k && usable(k) ? k.secret : null;
  };
  const current = () => {
    const active = keys.filter((k) => k.retiredAt === null).sort((a, b) =>
      b.createdAt - a.createdAt
    );
    if (!active.length) throw new Error("no active signing key");
    return active[0];
  };
  const sign = ({ userId, sessionId, tier }: Subject) => {
    const iat = Math.floor(now() / 1000);
    const k = current();
    const claims = { sub: userId, sid: sessionId, tier, iat, nbf: iat, exp: iat + ACCESS_TTL_S };
    return signJwt(claims, k.kid, k.secret);
  };
  const secretFor = async (kid: string) => {
    if (!keys.some((x) => x.kid === kid) && now() - lastReload > RELOAD_THROTTLE_MS) {
      await reload();
    }
    return usableSecret(kid);
  };
  return {
    issue: (subject) => Promise.try(sign, subject),
    async verify(token) {
      const hit = signed.get(token);
      if (hit) {
        // Same string, same signature: only the key's retirement and the clock can change.
        if (!usableSecret(hit.kid)) throw new JwtError("unknown-kid");
        return checkTimes(hit.claims, now());
      }
      const fresh = await verifySignature(token, secretFor);
      const claims = checkTimes(fresh.claims, now());
      if (signed.size >= SIGNED_CACHE_MAX) signed.clear();
      signed.set(token, { kid: fresh.kid, claims: Object.freeze(claims) });
      return claims;
    },
    reload,
    currentKid: () => current().kid,
  };
}
