import assert from "node:assert/strict";
import {
  constantTimeEqual,
  displayPrefix,
  generateSecret,
  hashSecret,
  isWellFormedSecret,
  PREFIX,
} from "../lib/secrets.ts";
import { parseApiKeyHeader, parseBearer, presentedCredential } from "../lib/bearer.ts";
import {
  type AccessClaims,
  b64url,
  createKeyring,
  JwtError,
  type KeyMaterial,
  signJwt,
  verifyJwt,
} from "../lib/jwt.ts";
import { createPasswordHasher } from "../lib/password.ts";
import { ApiError } from "../lib/problem.ts";

Deno.test("`generateSecret()` makes prefixed base62 secrets with a valid checksum", () => {
  const seen = new Set<string>();
  for (const prefix of Object.values(PREFIX)) {
    for (let i = 0; i < 50; i++) {
      const s = generateSecret(prefix);
      assert.match(s, new RegExp(`^${prefix}[0-9A-Za-z]{38}$`));
      assert.ok(isWellFormedSecret(s, prefix));
      seen.add(s);
    }
  }
  assert.equal(seen.size, 150);
  assert.equal(displayPrefix("npl_AbCdEf123"), "npl_AbCdEf");
  assert.equal(displayPrefix("nplops_AbCdEf123"), "nplops_AbCdEf");
});

Deno.test("`isWellFormedSecret()` refuses wrong prefix, typos, truncation and bad checksums", () => {
  const key = generateSecret(PREFIX.apiKey);
  assert.equal(isWellFormedSecret(key, PREFIX.opsToken), false);
  assert.equal(isWellFormedSecret("nplx_" + key.slice(4), PREFIX.apiKey), false);
  assert.equal(isWellFormedSecret(key.slice(0, -1), PREFIX.apiKey), false);
  assert.equal(isWellFormedSecret(key + "a", PREFIX.apiKey), false);
  // One character changed in the body: the CRC32 catches every single-character typo.
  for (let i = 4; i < key.length; i++) {
    const c = key[i] === "a" ? "b" : "a";
    assert.equal(isWellFormedSecret(key.slice(0, i) + c + key.slice(i + 1), PREFIX.apiKey), false);
  }
});

Deno.test("`hashSecret()` is SHA-256 hex and `constantTimeEqual()` compares", () => {
  assert.equal(
    hashSecret("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.ok(constantTimeEqual("abc", "abc"));
  assert.ok(!constantTimeEqual("abc", "abd"));
  assert.ok(!constantTimeEqual("abc", "abcd"));
});

Deno.test("`parseBearer()` accepts any case of the scheme and refuses malformed headers", () => {
  assert.equal(parseBearer(null), null);
  assert.equal(parseBearer("Bearer abc.def-_~+/="), "abc.def-_~+/=");
  assert.equal(parseBearer("bearer abc"), "abc");
  assert.equal(parseBearer("BEARER  abc"), "abc");
  // Another scheme presents no Bearer credential (RFC 6750 §3: 401 without an error code).
  for (const other of ["Basic YWRtaW46eA==", "Bearerabc", "Digest x", ""]) {
    assert.equal(parseBearer(other), null, other);
  }
  for (const bad of ["Bearer", "Bearer ", "bearer  ", "Bearer a b", "Bearer ä"]) {
    assert.throws(
      () => parseBearer(bad),
      (e) => e instanceof ApiError && e.status === 400,
      bad,
    );
  }
  assert.throws(() => parseApiKeyHeader("has space"), ApiError);
  assert.equal(parseApiKeyHeader("npl_x"), "npl_x");
});

Deno.test("`presentedCredential()` tells the kind by header and prefix", () => {
  const h = (init: Record<string, string>) => presentedCredential(new Headers(init));
  assert.equal(h({}), null);
  assert.deepEqual(h({ authorization: "Bearer nplops_x" }), {
    kind: "opsToken",
    value: "nplops_x",
  });
  assert.deepEqual(h({ authorization: "Bearer a.b.c" }), { kind: "jwt", value: "a.b.c" });
  assert.deepEqual(h({ "x-api-key": "npl_x" }), { kind: "apiKey", value: "npl_x" });
  // The seed's POST /ops/tokens example sends both headers: Authorization wins.
  assert.deepEqual(h({ authorization: "Bearer a.b.c", "x-api-key": "npl_x" }), {
    kind: "jwt",
    value: "a.b.c",
  });
});

const SECRET = new TextEncoder().encode("k".repeat(32));
const T0 = Date.UTC(2026, 4, 27, 12, 0, 0);
const S0 = T0 / 1000;
const CLAIMS: AccessClaims = {
  sub: crypto.randomUUID(),
  sid: crypto.randomUUID(),
  tier: "sharp",
  iat: S0,
  nbf: S0,
  exp: S0 + 900,
};

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof JwtError) return err.reason;
    throw err;
  }
  return "accepted";
}

const enc = (v: unknown) => b64url(new TextEncoder().encode(JSON.stringify(v)));
const flip = (seg: string) => seg.slice(0, 5) + (seg[5] === "A" ? "B" : "A") + seg.slice(6);

Deno.test("`verifyJwt()` accepts a good token and refuses tampering of each segment", async () => {
  const keyFor = (kid: string) => Promise.resolve(kid === "k1" ? SECRET : null);
  const token = signJwt(CLAIMS, "k1", SECRET);
  assert.deepEqual(await verifyJwt(token, keyFor, T0), CLAIMS);
  const [h, p, s] = token.split(".");
  assert.equal(await reason(verifyJwt(`${flip(h)}.${p}.${s}`, keyFor, T0)), "malformed");
  assert.equal(await reason(verifyJwt(`${h}.${flip(p)}.${s}`, keyFor, T0)), "signature");
  assert.equal(await reason(verifyJwt(`${h}.${p}.${flip(s)}`, keyFor, T0)), "signature");
  const admin = enc({ ...CLAIMS, tier: "admin" });
  assert.equal(await reason(verifyJwt(`${h}.${admin}.${s}`, keyFor, T0)), "signature");
  for (const bad of ["", "a.b", "a.b.c.d", `${h}..${s}`, `${h}.${p}.`, `${h}.${p}.${s}!`]) {
    assert.equal(await reason(verifyJwt(bad, keyFor, T0)), "malformed", bad);
  }
  // The signature's last character carries 2 unused bits: setting one decodes to the same
  // bytes, but is another spelling of the token, so it is refused.
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const respelt = s.slice(0, -1) + ALPHABET[ALPHABET.indexOf(s.at(-1)!) ^ 1];
  assert.deepEqual(
    Uint8Array.fromBase64(respelt, { alphabet: "base64url" }),
    Uint8Array.fromBase64(s, { alphabet: "base64url" }),
  );
  assert.equal(await reason(verifyJwt(`${h}.${p}.${respelt}`, keyFor, T0)), "malformed");
});

Deno.test("`verifyJwt()` pins HS256: alg none, RS256 and unknown kids are refused", async () => {
  const keyFor = (kid: string) => Promise.resolve(kid === "k1" ? SECRET : null);
  const body = enc(CLAIMS);
  const none = `${enc({ alg: "none", typ: "JWT", kid: "k1" })}.${body}.`;
  assert.equal(await reason(verifyJwt(none + "x", keyFor, T0)), "algorithm");
  const rs = `${enc({ alg: "RS256", kid: "k1" })}.${body}.AAAA`;
  assert.equal(await reason(verifyJwt(rs, keyFor, T0)), "algorithm");
  const lower = `${enc({ alg: "hs256", kid: "k1" })}.${body}.AAAA`;
  assert.equal(await reason(verifyJwt(lower, keyFor, T0)), "algorithm");
  const other = signJwt(CLAIMS, "k2", SECRET);
  assert.equal(await reason(verifyJwt(other, keyFor, T0)), "unknown-kid");
  const noKid = `${enc({ alg: "HS256" })}.${body}.AAAA`;
  assert.equal(await reason(verifyJwt(noKid, keyFor, T0)), "unknown-kid");
});

Deno.test("`verifyJwt()` refuses claims of the wrong type", async () => {
  const keyFor = () => Promise.resolve(SECRET);
  const bad: Record<string, unknown>[] = [
    { sub: 42 },
    { sub: "not-a-uuid" },
    { sid: null },
    { tier: "root" },
    { exp: "9999999999" },
    { iat: 1.5 },
    { nbf: undefined },
  ];
  for (const change of bad) {
    const token = signJwt({ ...CLAIMS, ...change } as AccessClaims, "k1", SECRET);
    assert.equal(await reason(verifyJwt(token, keyFor, T0)), "claims", JSON.stringify(change));
  }
});

Deno.test("`verifyJwt()` checks exp and nbf with 30 s of skew on a fixed clock", async () => {
  const keyFor = () => Promise.resolve(SECRET);
  const token = signJwt(CLAIMS, "k1", SECRET);
  const at = (s: number) => verifyJwt(token, keyFor, (S0 + s) * 1000);
  assert.equal(await reason(at(929)), "accepted");
  assert.equal(await reason(at(930)), "expired");
  assert.equal(await reason(at(-30)), "accepted");
  assert.equal(await reason(at(-31)), "not-yet-valid");
  const later = signJwt({ ...CLAIMS, nbf: S0 + 600 }, "k1", SECRET);
  assert.equal(await reason(verifyJwt(later, keyFor, T0)), "not-yet-valid");
  assert.equal(await reason(verifyJwt(later, keyFor, T0 + 600_000)), "accepted");
});

Deno.test("`createKeyring()` signs with the current key and verifies retired ones for 15 min", async () => {
  let clock = T0;
  let stored: KeyMaterial[] = [{ kid: "old", secret: SECRET, createdAt: 1, retiredAt: null }];
  const ring = await createKeyring(() => Promise.resolve(stored), () => clock);
  const who = { userId: CLAIMS.sub, sessionId: CLAIMS.sid, tier: "sharp" as const };
  const oldToken = await ring.issue(who);
  // Rotation elsewhere: the old key retires, a new one becomes current.
  const fresh = crypto.getRandomValues(new Uint8Array(32));
  stored = [
    { kid: "old", secret: SECRET, createdAt: 1, retiredAt: T0 },
    { kid: "new", secret: fresh, createdAt: 2, retiredAt: null },
  ];
  clock += 2000;
  const newToken = await (async () => {
    await ring.reload();
    return await ring.issue(who);
  })();
  assert.equal(ring.currentKid(), "new");
  assert.equal(JSON.parse(atob(newToken.split(".")[0].replaceAll("_", "/"))).kid, "new");
  assert.equal((await ring.verify(oldToken)).sub, CLAIMS.sub);
  assert.equal((await ring.verify(newToken)).sub, CLAIMS.sub);
  clock = T0 + 16 * 60_000;
  assert.equal(await reason(ring.verify(oldToken)), "unknown-kid");
});

Deno.test("`createKeyring()` reloads once for an unknown kid (a rotation on another instance)", async () => {
  const clock = T0;
  let stored: KeyMaterial[] = [{ kid: "a", secret: SECRET, createdAt: 1, retiredAt: null }];
  let loads = 0;
  const load = () => {
    loads++;
    return Promise.resolve(stored);
  };
  const ring = await createKeyring(load, () => clock + loads * 5000);
  const other = crypto.getRandomValues(new Uint8Array(32));
  const token = signJwt(
    { ...CLAIMS, iat: S0 + 5, nbf: S0 + 5, exp: S0 + 905 },
    "b",
    other,
  );
  stored = [...stored, { kid: "b", secret: other, createdAt: 2, retiredAt: null }];
  assert.equal((await ring.verify(token)).sub, CLAIMS.sub);
  assert.equal(loads, 2);
});

/** A keyring of one current key `k1` (a copy of SECRET, so a test may zero it) on `clock()`. */
async function ringOf(clock: () => number) {
  const secret = SECRET.slice();
  const ring = await createKeyring(
    () => Promise.resolve([{ kid: "k1", secret, createdAt: 1, retiredAt: null }]),
    clock,
  );
  return { ring, secret };
}

Deno.test("`createKeyring()` skips the HMAC of a token seen before, not its exp", async () => {
  let clock = T0;
  const { ring, secret } = await ringOf(() => clock);
  const token = signJwt(CLAIMS, "k1", secret);
  assert.equal(await reason(ring.verify(token)), "accepted");
  // Zeroing the key in place fails any fresh HMAC: from here on only the cache can accept.
  secret.fill(0);
  clock = T0 + 929_000;
  assert.equal(await reason(ring.verify(token)), "accepted");
  clock = T0 + 930_000;
  assert.equal(await reason(ring.verify(token)), "expired");
  // reload() forgets it: the HMAC runs again, against the zeroed key.
  clock = T0;
  await ring.reload();
  assert.equal(await reason(ring.verify(token)), "signature");
});

Deno.test("`createKeyring()` refuses a remembered token once its key is past its grace", async () => {
  let clock = T0;
  const secret = SECRET.slice();
  let stored: KeyMaterial[] = [{ kid: "old", secret, createdAt: 1, retiredAt: null }];
  const ring = await createKeyring(() => Promise.resolve(stored), () => clock);
  // Valid for an hour, so only the key's retirement can refuse it.
  const token = signJwt({ ...CLAIMS, exp: S0 + 3600 }, "old", secret);
  const fresh = crypto.getRandomValues(new Uint8Array(32));
  stored = [
    { kid: "old", secret, createdAt: 1, retiredAt: T0 },
    { kid: "new", secret: fresh, createdAt: 2, retiredAt: null },
  ];
  await ring.reload();
  assert.equal(await reason(ring.verify(token)), "accepted");
  secret.fill(0);
  clock = T0 + 929_000;
  assert.equal(await reason(ring.verify(token)), "accepted", "from the cache");
  clock = T0 + 930_000;
  assert.equal(await reason(ring.verify(token)), "unknown-kid");
});

Deno.test("`createKeyring()` refuses every string but the remembered token itself", async () => {
  const { ring } = await ringOf(() => T0);
  const token = signJwt(CLAIMS, "k1", SECRET);
  assert.equal(await reason(ring.verify(token)), "accepted");
  const [h, p, s] = token.split(".");
  const forged: [string, string][] = [
    [`${h}.${flip(p)}.${s}`, "signature"],
    [`${h}.${enc({ ...CLAIMS, tier: "admin" })}.${s}`, "signature"],
    [`${h}.${p}.${flip(s)}`, "signature"],
    // Shorter or longer (whole bytes: 40 and 44 characters spell 30 and 33 bytes exactly).
    [`${h}.${p}.${s.slice(0, -3)}`, "signature"],
    [`${token}A`, "signature"],
    [`${enc({ alg: "none", typ: "JWT", kid: "k1" })}.${p}.${s}`, "algorithm"],
    [`${enc({ alg: "RS256", typ: "JWT", kid: "k1" })}.${p}.${s}`, "algorithm"],
    [`${token} `, "malformed"],
  ];
  for (const [bad, why] of forged) assert.equal(await reason(ring.verify(bad)), why, bad);
  assert.equal(await reason(ring.verify(token)), "accepted");
});

Deno.test("password hasher: self-describing scrypt, verify, rehash and the dummy path", async () => {
  const cheap = createPasswordHasher({ ln: 10, r: 8, p: 1 });
  const stronger = createPasswordHasher({ ln: 11, r: 8, p: 1 });
  const h = await cheap.hash("correct horse battery");
  assert.match(h, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
  assert.ok(await cheap.verify("correct horse battery", h));
  assert.ok(!(await cheap.verify("correct horse batterY", h)));
  assert.ok(await stronger.verify("correct horse battery", h), "old parameters still verify");
  assert.equal(cheap.needsRehash(h), false);
  assert.equal(stronger.needsRehash(h), true);
  assert.equal(await cheap.verify("anything", null), false);
  assert.equal(await cheap.verify("anything", "garbage"), false);
});

Deno.test("password hashing at N=2^17 does not block the event loop", async () => {
  const hasher = createPasswordHasher();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const started = performance.now();
  await hasher.verify("x", null);
  const ms = performance.now() - started;
  clearInterval(timer);
  // A blocking hash would let no timer fire until it finished.
  assert.ok(ticks >= Math.floor(ms / 10) / 4, `ticks ${ticks} in ${Math.round(ms)} ms`);
});
