/**
 * HS256 access tokens (RFC 7519) via Web Crypto. Verification pins the algorithm, requires a
 * known `kid`, checks the signature in constant time (crypto.subtle.verify), the claim types,
 * and `exp`/`nbf`/`iat` with a small clock skew. The keyring imports each key once.
 */
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
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function unb64url(text: string): Uint8Array<ArrayBuffer> {
  if (!SEGMENT_RE.test(text)) throw new JwtError("malformed");
  const b64 = text.replaceAll("-", "+").replaceAll("_", "/");
  try {
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    throw new JwtError("malformed");
  }
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

/** Imports raw key bytes as an HMAC-SHA-256 key usable to sign and verify. */
export function importHmacKey(secret: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

/** Signs `claims` with `key`, naming it `kid` in the header. */
export async function signJwt(claims: AccessClaims, kid: string, key: CryptoKey): Promise<string> {
  const header = b64url(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT", kid })));
  const payload = b64url(enc.encode(JSON.stringify(claims)));
  const sig = await crypto.subtle.sign("HMAC", key, enc.encode(`${header}.${payload}`));
  return `${header}.${payload}.${b64url(new Uint8Array(sig))}`;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

function checkClaims(p: Record<string, unknown>, nowS: number): AccessClaims {
  const typed = typeof p.sub === "string" && UUID_RE.test(p.sub) &&
    typeof p.sid === "string" && UUID_RE.test(p.sid) &&
    typeof p.tier === "string" && (TIERS as readonly string[]).includes(p.tier) &&
    isInt(p.iat) && isInt(p.exp) && isInt(p.nbf);
  if (!typed) throw new JwtError("claims");
  const claims = p as unknown as AccessClaims;
  if (claims.exp <= nowS - CLOCK_SKEW_S) throw new JwtError("expired");
  if (claims.nbf > nowS + CLOCK_SKEW_S || claims.iat > nowS + CLOCK_SKEW_S) {
    throw new JwtError("not-yet-valid");
  }
  return claims;
}

/**
 * Verifies a compact JWS and returns its claims; throws JwtError. `keyFor` returns the
 * verification key of a `kid`, or null when there is none.
 */
export async function verifyJwt(
  token: string,
  keyFor: (kid: string) => Promise<CryptoKey | null>,
  nowMs: number,
): Promise<AccessClaims> {
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => p === "")) throw new JwtError("malformed");
  const header = jsonSegment(parts[0]);
  // Pin the algorithm: `none`, RS256 (key confusion) and anything else are refused.
  if (header.alg !== "HS256") throw new JwtError("algorithm");
  if (header.typ !== undefined && header.typ !== "JWT") throw new JwtError("malformed");
  if (typeof header.kid !== "string" || header.kid.length > 64) throw new JwtError("unknown-kid");
  const sig = unb64url(parts[2]);
  if (!SEGMENT_RE.test(parts[1])) throw new JwtError("malformed");
  const key = await keyFor(header.kid);
  if (!key) throw new JwtError("unknown-kid");
  // The payload is parsed only once the signature holds.
  const ok = await crypto.subtle.verify("HMAC", key, sig, enc.encode(`${parts[0]}.${parts[1]}`));
  if (!ok) throw new JwtError("signature");
  return checkClaims(jsonSegment(parts[1]), Math.floor(nowMs / 1000));
}

/** Signs with the current key and verifies with every still-valid one. */
export interface Keyring {
  /** Issues a 15-minute access token for a session, signed with the current key. */
  issue(subject: { userId: string; sessionId: string; tier: Tier }): Promise<string>;
  verify(token: string): Promise<AccessClaims>;
  /** Re-reads the keys (after a rotation elsewhere). */
  reload(): Promise<void>;
  currentKid(): string;
}

// An unknown kid triggers a reload at most this often, so forged kids cannot flood the db.
const RELOAD_THROTTLE_MS = 1000;

/** A keyring over `load` (the stored keys); CryptoKeys are imported once per kid. */
export async function createKeyring(
  load: () => Promise<KeyMaterial[]>,
  now: () => number,
): Promise<Keyring> {
  const imported = new Map<string, CryptoKey>();
  let keys: KeyMaterial[] = [];
  let lastReload = -Infinity;
  const reload = async () => {
    lastReload = now();
    const fresh = await load();
    for (const k of fresh) {
      if (!imported.has(k.kid)) imported.set(k.kid, await importHmacKey(k.secret));
    }
    keys = fresh;
  };
  await reload();
  const usable = (k: KeyMaterial) =>
    k.retiredAt === null || now() < k.retiredAt + (ACCESS_TTL_S + CLOCK_SKEW_S) * 1000;
  const current = () => {
    const active = keys.filter((k) => k.retiredAt === null).sort((a, b) =>
      b.createdAt - a.createdAt
    );
    if (!active.length) throw new Error("no active signing key");
    return active[0];
  };
  const keyFor = async (kid: string) => {
    let k = keys.find((x) => x.kid === kid);
    if (!k && now() - lastReload > RELOAD_THROTTLE_MS) {
      await reload();
      k = keys.find((x) => x.kid === kid);
    }
    return k && usable(k) ? imported.get(kid)! : null;
  };
  return {
    async issue({ userId, sessionId, tier }) {
      const iat = Math.floor(now() / 1000);
      const k = current();
      const claims = { sub: userId, sid: sessionId, tier, iat, nbf: iat, exp: iat + ACCESS_TTL_S };
      return await signJwt(claims, k.kid, imported.get(k.kid)!);
    },
    verify: (token) => verifyJwt(token, keyFor, now()),
    reload,
    currentKid: () => current().kid,
  };
}
