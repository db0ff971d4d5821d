/**
 * Signup, login, refresh and logout. Refresh tokens travel in the `refreshToken` cookie and
 * rotate on every use (RFC 9700 §4.14): presenting a retired token again after
 * REFRESH_GRACE_MS revokes the whole session; within the window (two tabs refreshing at
 * once) the late request gets a fresh token in the same session instead of a logout.
 */
import { checkLoginLimit, checkSignupLimit } from "./ratelimit.ts";
import { ApiError } from "../lib/problem.ts";
import { json, noContent, parseCookies, readJson, serializeCookie } from "../lib/http.ts";
import { objectBody } from "../lib/fields.ts";
import { ACCESS_TTL_S } from "../lib/jwt.ts";
import type { Tier } from "../lib/policy.ts";
import { generateSecret, hashSecret, isWellFormedSecret, PREFIX } from "../lib/secrets.ts";
import { findUserByEmail, insertUser, updateUserPasswordHash, type UserRow } from "../db/users.ts";
import {
  findRefreshToken,
  insertRefreshToken,
  insertSession,
  revokeSession,
  revokeSessionByRefreshToken,
  rotateRefreshToken,
} from "../db/sessions.ts";
import type { Identity } from "./authenticate.ts";
import type { Ctx, Deps, Route } from "./context.ts";
import { SIGNED_UP, TOKENS } from "./schemas.ts";
import { newPasswordProblem, PASSWORD_MAX, PASSWORD_MIN } from "../lib/password.ts";

/** The refresh cookie's name and path (it is sent to /api/v1/auth/* only). */
export const REFRESH_COOKIE = "refreshToken";
const COOKIE_PATH = "/api/v1/auth";
/** Refresh tokens live 30 days from their issue. */
export const REFRESH_TTL_S = 30 * 24 * 60 * 60;
/** How long after a rotation the retired token still yields a token instead of a logout. */
export const REFRESH_GRACE_MS = 10_000;

/** The identity service, or a 500 when the server was wired without one. */
export function identityOf(deps: Deps): Identity {
  if (!deps.identity) throw new Error("identity service not configured");
  return deps.identity;
}

/** A user as the API shows it. */
export function publicUser(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    tier: u.tier,
    disabled: u.disabled,
    createdAt: u.created_at.toISOString(),
  };
}

function refreshCookie(value: string, maxAge: number): string {
  return serializeCookie(REFRESH_COOKIE, value, {
    maxAge,
    path: COOKIE_PATH,
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
  });
}

const clearCookie = () => refreshCookie("", 0);

function refreshRefused(detail: string): ApiError {
  return new ApiError("invalid-token", detail, { headers: { "set-cookie": clearCookie() } });
}

/** Issues an access token and sets `refreshRaw` as the cookie. */
async function tokensResponse(
  ctx: Ctx,
  who: { user_id: string; session_id: string; tier: Tier },
  refreshRaw: string,
): Promise<Response> {
  const accessToken = await identityOf(ctx.deps).keyring.issue({
    userId: who.user_id,
    sessionId: who.session_id,
    tier: who.tier,
  });
  return json({ accessToken, tokenType: "Bearer", expiresIn: ACCESS_TTL_S }, 200, {
    "set-cookie": refreshCookie(refreshRaw, REFRESH_TTL_S),
  });
}

async function signup(ctx: Ctx): Promise<Response> {
  if (!ctx.deps.settings.get("signup.enabled")) {
    throw new ApiError("signup-disabled", "Signup is disabled on this server");
  }
  await checkSignupLimit(ctx);
  const f = objectBody(await readJson(ctx.req), ["email", "password"]);
  const email = f.email("email");
  const password = f.body.password;
  const problem = typeof password === "string"
    ? newPasswordProblem(password)
    : `must be a string of at least ${PASSWORD_MIN} characters`;
  if (problem) f.fail("/password", `password ${problem}`);
  f.done();
  const taken = () => new ApiError("conflict", "An account with this email already exists");
  // Before the costly hash: signups of a taken email must not occupy the password pool that
  // logins need (the insert below still decides a race).
  if (await findUserByEmail(ctx.db, email!)) throw taken();
  const passwordHash = await identityOf(ctx.deps).passwords.hash(password as string);
  const user = await insertUser(ctx.db, {
    id: crypto.randomUUID(),
    email: email!,
    passwordHash,
    tier: "free",
    at: new Date(ctx.deps.now()),
  });
  if (!user) throw taken();
  const { disabled: _, ...shown } = publicUser(user);
  return json(shown, 201, { location: "/api/v1/me" });
}

function loginBody(value: unknown): { email: string; password: string } {
  const f = objectBody(value, ["email", "password"]);
  const email = f.string("email", 1, 254);
  const password = f.body.password;
  if (typeof password !== "string" || password === "" || password.length > PASSWORD_MAX) {
    f.fail(
      "/password",
      `password must be a non-empty string of at most ${PASSWORD_MAX} characters`,
    );
  }
  f.done();
  return { email: email!, password: password as string };
}

const badLogin = () => new ApiError("unauthorized", "The email or password is incorrect");

async function login(ctx: Ctx): Promise<Response> {
  const { email, password } = loginBody(await readJson(ctx.req));
  // Charged before hashing, so a locked-out attacker costs no scrypt time.
  await checkLoginLimit(ctx, email);
  const { passwords } = identityOf(ctx.deps);
  const user = await findUserByEmail(ctx.db, email);
  // An unknown email verifies against a dummy hash: same answer, same time.
  const ok = await passwords.verify(password, user?.password_hash ?? null);
  if (!user || !ok || user.disabled) throw badLogin();
  if (passwords.needsRehash(user.password_hash)) {
    await updateUserPasswordHash(ctx.db, user.id, await passwords.hash(password));
  }
  const refreshRaw = generateSecret(PREFIX.refresh);
  const at = ctx.deps.now();
  const session = { user_id: user.id, session_id: crypto.randomUUID(), tier: user.tier };
  await insertSession(ctx.db, {
    id: session.session_id,
    userId: user.id,
    tokenHash: hashSecret(refreshRaw),
    at: new Date(at),
    expiresAt: new Date(at + REFRESH_TTL_S * 1000),
  });
  return await tokensResponse(ctx, session, refreshRaw);
}

/** The refresh cookie's value: 401 when absent, 401 invalid_token when not one of ours. */
function presentedRefreshToken(ctx: Ctx): string {
  const raw = parseCookies(ctx.req.headers.get("cookie")).get(REFRESH_COOKIE);
  if (raw === undefined || raw === "") {
    throw new ApiError("unauthorized", "No refresh token cookie was sent");
  }
  if (!isWellFormedSecret(raw, PREFIX.refresh)) {
    throw refreshRefused("The refresh token is invalid");
  }
  return raw;
}

async function refresh(ctx: Ctx): Promise<Response> {
  const oldHash = hashSecret(presentedRefreshToken(ctx));
  const at = ctx.deps.now();
  const next = generateSecret(PREFIX.refresh);
  const times = { at: new Date(at), expiresAt: new Date(at + REFRESH_TTL_S * 1000) };
  const rotated = await rotateRefreshToken(ctx.db, {
    oldHash,
    newHash: hashSecret(next),
    ...times,
  });
  if (rotated) return await tokensResponse(ctx, rotated, next);

  const state = await findRefreshToken(ctx.db, oldHash);
  if (!state || state.session_revoked || state.user_disabled || state.retired_at === null) {
    throw refreshRefused("The refresh token is invalid, expired or its session has ended");
  }
  if (at - state.retired_at.getTime() <= REFRESH_GRACE_MS) {
    // A concurrent double submit (two tabs): a fresh token in the same session.
    const fresh = { sessionId: state.session_id, tokenHash: hashSecret(next), ...times };
    if (await insertRefreshToken(ctx.db, fresh)) return await tokensResponse(ctx, state, next);
    throw refreshRefused("The session of this refresh token has ended");
  }
  await revokeSession(ctx.db, state.session_id, times.at);
  ctx.deps.log.warn("refresh token reuse: session revoked", {
    requestId: ctx.requestId,
    sessionId: state.session_id,
    userId: state.user_id,
  });
  throw refreshRefused("This refresh token was already used; the session has been ended");
}

async function logout(ctx: Ctx): Promise<Response> {
  const raw = parseCookies(ctx.req.headers.get("cookie")).get(REFRESH_COOKIE) ?? "";
  if (isWellFormedSecret(raw, PREFIX.refresh)) {
    await revokeSessionByRefreshToken(ctx.db, hashSecret(raw), new Date(ctx.deps.now()));
  }
  return noContent({ "set-cookie": clearCookie() });
}

/** Routes of this file: public (the cookie is the credential of refresh and logout). */
export const authRoutes: Route[] = [
  {
    method: "POST",
    path: "/api/v1/auth/signup",
    auth: [],
    limit: "login",
    idempotent: true,
    summary: "Create a free account",
    body: {
      type: "object",
      required: ["email", "password"],
      properties: {
        email: { type: "string", format: "email", maxLength: 254 },
        password: { type: "string", minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX },
      },
      additionalProperties: false,
    },
    responses: { 201: { description: "The new account", schema: SIGNED_UP } },
    handler: signup,
  },
  {
    method: "POST",
    path: "/api/v1/auth/login",
    auth: [],
    limit: "login",
    summary: "Log in",
    body: {
      type: "object",
      required: ["email", "password"],
      properties: {
        email: { type: "string", minLength: 1, maxLength: 254 },
        password: { type: "string", minLength: 1, maxLength: PASSWORD_MAX },
      },
      additionalProperties: false,
    },
    responses: {
      200: { description: "An access token; the refresh cookie is set", schema: TOKENS },
    },
    handler: login,
  },
  {
    method: "POST",
    path: "/api/v1/auth/refresh",
    auth: [],
    summary: "Rotate the refresh cookie for a new access token",
    responses: {
      200: { description: "A new access token; the cookie is rotated", schema: TOKENS },
    },
    handler: refresh,
  },
  {
    method: "POST",
    path: "/api/v1/auth/logout",
    auth: [],
    summary: "End the session of the refresh cookie",
    responses: { 204: { description: "The session has ended; the cookie is cleared" } },
    handler: logout,
  },
];
