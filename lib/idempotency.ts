/**
 * Idempotency-Key decisions, pure: header syntax, request fingerprints, the per-key
 * cipher of stored responses, and `classify`, which says what a retry gets.
 */
import { ApiError } from "./problem.ts";

/** Longest accepted key (SPEC §6: 1–255 visible ASCII). */
export const KEY_MAX_LENGTH = 255;

const VISIBLE_ASCII = /^[\x21-\x7E]+$/;

/**
 * Parses an Idempotency-Key header value. The bare form (`abc-123`, as Stripe and the
 * seed send it) and the structured-field string (`"abc-123"`, RFC 8941, as the IETF draft
 * writes it) name the same key. Anything else is a 400.
 */
export function parseIdempotencyKey(header: string): string {
  const key = header.startsWith('"') ? unquoteSfString(header) : header;
  if (key.length === 0 || key.length > KEY_MAX_LENGTH || !VISIBLE_ASCII.test(key)) {
    throw new ApiError(
      "bad-request",
      `Idempotency-Key must be 1 to ${KEY_MAX_LENGTH} visible ASCII characters`,
    );
  }
  return key;
}

// RFC 8941 §3.3.3: a DQUOTE-delimited string where only `\"` and `\\` are escapes.
function unquoteSfString(value: string): string {
  let out = "";
  for (let i = 1; i < value.length; i++) {
    const c = value[i];
    if (c === "\\") {
      const next = value[++i];
      if (next !== '"' && next !== "\\") break;
      out += next;
    } else if (c === '"') {
      if (i === value.length - 1) return out;
      break;
    } else {
      out += c;
    }
  }
  throw new ApiError(
    "bad-request",
    "Idempotency-Key is neither a bare key nor one structured-field string",
  );
}

const enc = new TextEncoder();

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Hex SHA-256 of `data` by Web Crypto, which leaves the event loop for large bodies
 * (lib/sha256.ts is the synchronous one, for short strings on the request path).
 */
async function digestHex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** What identifies "the same request": method, path (with query) and SHA-256 of the body. */
export async function requestFingerprint(
  method: string,
  path: string,
  body: Uint8Array,
): Promise<string> {
  return `${method} ${path} ${await digestHex(body)}`;
}

const HKDF_SALT = enc.encode("proplab/idempotency/v1");

/**
 * Keys derived from the raw Idempotency-Key and the caller's scope: the row stores only
 * `keyHash`, a keyed `tag` of the fingerprint, and the response `seal`ed with AES-256-GCM,
 * so a database dump shows no secret and only the same caller with the same key can open it.
 */
export interface KeyMaterial {
  /** Hex SHA-256 of the raw key: the row's lookup key. */
  keyHash: string;
  /** Keyed (HMAC-SHA256) form of a fingerprint, safe to store: the body's hash is not exposed. */
  tag(fingerprint: string): Promise<string>;
  /** Encrypts `plain`, bound to `aad`; returns IV ‖ ciphertext. */
  seal(plain: Uint8Array, aad: string): Promise<Uint8Array>;
  /** Decrypts what `seal` produced with the same `aad`; throws when tampered with. */
  open(sealed: Uint8Array, aad: string): Promise<Uint8Array>;
}

/** Derives the key material for `rawKey` used by `scope` (HKDF-SHA256, RFC 5869). */
export async function deriveKeyMaterial(rawKey: string, scope: string): Promise<KeyMaterial> {
  const ikm = await crypto.subtle.importKey("raw", enc.encode(rawKey), "HKDF", false, [
    "deriveBits",
  ]);
  const bits = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: enc.encode(scope) },
      ikm,
      512,
    ),
  );
  const aes = await crypto.subtle.importKey("raw", bits.slice(0, 32), "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  const mac = await crypto.subtle.importKey(
    "raw",
    bits.slice(32),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return {
    keyHash: await digestHex(rawKey),
    tag: async (fingerprint) => hex(await crypto.subtle.sign("HMAC", mac, enc.encode(fingerprint))),
    async seal(plain, aad) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: enc.encode(aad) },
        aes,
        plain as Uint8Array<ArrayBuffer>,
      );
      const out = new Uint8Array(12 + ct.byteLength);
      out.set(iv);
      out.set(new Uint8Array(ct), 12);
      return out;
    },
    async open(sealed, aad) {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: sealed.slice(0, 12), additionalData: enc.encode(aad) },
        aes,
        sealed.slice(12),
      );
      return new Uint8Array(plain);
    },
  };
}

/** A response as it is stored for replay: headers in order, body bytes. */
export interface StoredResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** Serialises headers and body (status travels in its own column): u32 length ‖ JSON ‖ body. */
export function encodeStoredResponse(res: StoredResponse): Uint8Array {
  const head = enc.encode(JSON.stringify(res.headers));
  const out = new Uint8Array(4 + head.byteLength + res.body.byteLength);
  new DataView(out.buffer).setUint32(0, head.byteLength);
  out.set(head, 4);
  out.set(res.body, 4 + head.byteLength);
  return out;
}

/** Reverses `encodeStoredResponse`. */
export function decodeStoredResponse(status: number, bytes: Uint8Array): StoredResponse {
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  const headers = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + len)));
  return { status, headers, body: bytes.slice(4 + len) };
}

/**
 * Whether an answer is final and so stored for replay: success and the handler's 4xx
 * (as Stripe does). Not stored, so a retry runs again: 5xx, 429 (the caller may retry
 * later) and 401 (a credential problem, not a property of the request).
 */
export function isStorableStatus(status: number): boolean {
  return status < 500 && status !== 429 && status !== 401;
}

/** What `classify` needs of a stored row; times in ms since the epoch. */
export interface KeyRow {
  state: "in_progress" | "completed";
  fingerprint: string;
  createdAt: number;
  lockedAt: number;
}

/** How long a row holds: its retention and the lock of an unfinished request. */
export interface KeyLimits {
  retentionMs: number;
  lockTimeoutMs: number;
}

/** What a request carrying an already-known key gets. */
export type Verdict = "new" | "replay" | "mismatch" | "in-progress" | "stale-lock";

/**
 * Decides what a request with `fingerprint` gets given the stored `row` at `now`:
 * no row (or one past retention) → new; another request under this key → mismatch (422);
 * finished → replay; unfinished → in-progress (409), or stale-lock once its owner has held
 * it longer than the lock timeout (a crashed process), which the caller may take over.
 */
export function classify(
  row: KeyRow | null,
  fingerprint: string,
  now: number,
  limits: KeyLimits,
): Verdict {
  if (row === null || row.createdAt + limits.retentionMs <= now) return "new";
  if (row.fingerprint !== fingerprint) return "mismatch";
  if (row.state === "completed") return "replay";
  return row.lockedAt + limits.lockTimeoutMs <= now ? "stale-lock" : "in-progress";
}
