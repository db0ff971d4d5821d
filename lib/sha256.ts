/**
 * SHA-256 (FIPS 180-4) of a string's UTF-8 bytes, in plain JavaScript, for what requests
 * present: secrets, and the login limit's (email, IP) key. node:crypto's hashes allocate
 * native state per call that only a full garbage collection frees: at ~30,000 requests per
 * second it piled up, and every 7–13 s the event loop stopped for ~90 ms freeing it (README
 * "Performance"). This allocates nothing outside the JavaScript heap, and is as fast as the
 * native call for a key (~0.6 µs).
 */

/** The first 32 bits of the fractional part of `x`. */
const frac32 = (x: number) => ((x - Math.floor(x)) * 2 ** 32) >>> 0;

const PRIMES = (() => {
  const out: number[] = [];
  for (let n = 2; out.length < 64; n++) {
    if (out.every((p) => n % p !== 0)) out.push(n);
  }
  return out;
})();

/** Round constants: cube roots of the first 64 primes (§4.2.2). */
const K = Int32Array.from(PRIMES, (p) => frac32(Math.cbrt(p)));
/** Initial hash value: square roots of the first 8 primes (§5.3.3). */
const H0 = Int32Array.from(PRIMES.slice(0, 8), (p) => frac32(Math.sqrt(p)));

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const enc = new TextEncoder();

// Scratch, reused by every call (hashing is synchronous, so calls never overlap).
const W = new Int32Array(64);
const H = new Int32Array(8);

const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

/** Mixes the 16 words already in W[0..15] into H (§6.2.2). */
function compress(): void {
  for (let t = 16; t < 64; t++) {
    const w15 = W[t - 15];
    const w2 = W[t - 2];
    const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
    W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
  }
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
  for (let t = 0; t < 64; t++) {
    const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[t] + W[t]) | 0;
    const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] += a, H[1] += b, H[2] += c, H[3] += d, H[4] += e, H[5] += f, H[6] += g, H[7] += h;
}

/**
 * Byte `i` of the padded message (§5.1.1): the message, 0x80, zeros, then the length in
 * bits as 64 bits big-endian ending the last block.
 */
function paddedByte(byteAt: (i: number) => number, length: number, end: number, i: number) {
  if (i < length) return byteAt(i);
  if (i === length) return 0x80;
  const fromEnd = end - 1 - i; // 0 = the last byte
  if (fromEnd >= 8) return 0;
  // length * 8 may pass 2^32: take the bits as a float, one byte at a time.
  return Math.floor((length * 8) / 2 ** (8 * fromEnd)) & 0xff;
}

function digestHex(byteAt: (i: number) => number, length: number): string {
  H.set(H0);
  const end = Math.ceil((length + 9) / 64) * 64;
  for (let block = 0; block < end; block += 64) {
    for (let t = 0; t < 16; t++) {
      const i = block + 4 * t;
      W[t] = (paddedByte(byteAt, length, end, i) << 24) |
        (paddedByte(byteAt, length, end, i + 1) << 16) |
        (paddedByte(byteAt, length, end, i + 2) << 8) |
        paddedByte(byteAt, length, end, i + 3);
    }
    compress();
  }
  let out = "";
  for (let j = 0; j < 8; j++) {
    const v = H[j];
    out += HEX[(v >>> 24) & 0xff] + HEX[(v >>> 16) & 0xff] + HEX[(v >>> 8) & 0xff] + HEX[v & 0xff];
  }
  return out;
}

/** The SHA-256 of `text`'s UTF-8 encoding, as 64 lowercase hex digits. */
export function sha256Hex(text: string): string {
  // Secrets are ASCII: their UTF-16 units are their bytes, and nothing is encoded.
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return digestHex((i) => text.charCodeAt(i), text.length);
  const bytes = enc.encode(text);
  return digestHex((i) => bytes[i], bytes.length);
}
