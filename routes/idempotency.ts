/**
 * The Idempotency-Key middleware (SPEC §6) for routes declared `idempotent: true`:
 * claim the key in its own committed statement, run the handler and store its answer in
 * one transaction, replay the stored answer to retries, and purge old keys in the background.
 */
import { ApiError, problemResponse } from "../lib/problem.ts";
import { keepBody } from "../lib/http.ts";
import { errorFields } from "../lib/log.ts";
import {
  classify,
  decodeStoredResponse,
  deriveKeyMaterial,
  encodeStoredResponse,
  isStorableStatus,
  type KeyMaterial,
  parseIdempotencyKey,
  requestFingerprint,
  type StoredResponse,
} from "../lib/idempotency.ts";
import {
  completeIdempotencyRow,
  deleteIdempotencyClaim,
  deleteIdempotencyRowsBefore,
  findIdempotencyRow,
  type IdempotencyClaim,
  type IdempotencyRow,
  insertIdempotencyClaim,
  updateIdempotencyClaim,
} from "../db/idempotency.ts";
import type { Ctx, Deps } from "./context.ts";

/** Retry-After of a 409 while the first request runs: most creating requests take ms. */
const IN_PROGRESS_RETRY_AFTER = "1";
/** Claim attempts before a heavily contended key answers 409 too. */
const CLAIM_ATTEMPTS = 3;
/** How often the background purge runs. */
export const PURGE_INTERVAL_MS = 5 * 60_000;
/** Per-request headers never stored (a replay gets its own), and cookies (secrets). */
const UNSTORED_HEADERS = new Set(["x-request-id", "set-cookie", "ratelimit", "ratelimit-policy"]);

type Next = () => Promise<Response>;
type Hook = NonNullable<Deps["idempotency"]>;

/** One request's key: where its row lives and how to seal and open what it stores. */
interface Keyed {
  slot: string;
  claim: IdempotencyClaim;
  material: KeyMaterial;
}

/**
 * Builds the `Deps.idempotency` hook of one app instance. Its in-flight registry answers
 * a duplicate of a request this instance is still running without touching the database
 * (on PGlite, whose one connection the running transaction holds, a lookup would wait).
 */
export function createIdempotency(): Hook {
  const inFlight = new Map<string, string>();
  return async (ctx, _route, next) => {
    const header = ctx.req.headers.get("idempotency-key");
    if (header === null) return await next();
    const keyed = await keyRequest(ctx, parseIdempotencyKey(header));
    const running = inFlight.get(keyed.slot);
    if (running !== undefined) throw busy(running === keyed.claim.fingerprint);
    const row = await claimKey(ctx, keyed.claim);
    if (row) return await replay(row, keyed);
    inFlight.set(keyed.slot, keyed.claim.fingerprint);
    try {
      return await runAndStore(ctx, next, keyed);
    } finally {
      inFlight.delete(keyed.slot);
    }
  };
}

async function keyRequest(ctx: Ctx, rawKey: string): Promise<Keyed> {
  const { bytes: body, req } = await keepBody(ctx.req);
  ctx.req = req;
  const scope = ctx.principal?.subject ?? `ip:${ctx.clientIp}`;
  const material = await deriveKeyMaterial(rawKey, scope);
  const path = ctx.url.pathname + ctx.url.search;
  const fingerprint = await material.tag(await requestFingerprint(ctx.req.method, path, body));
  const claim = {
    scope,
    keyHash: material.keyHash,
    fingerprint,
    lockId: crypto.randomUUID(),
    now: new Date(ctx.deps.now()),
  };
  return { slot: `${scope}\n${material.keyHash}`, claim, material };
}

function busy(sameRequest: boolean): ApiError {
  if (!sameRequest) {
    return new ApiError(
      "idempotency-key-reused",
      "This Idempotency-Key was used with a different request (method, path or body)",
    );
  }
  return new ApiError("idempotency-in-progress", "A request with this Idempotency-Key is running", {
    headers: { "retry-after": IN_PROGRESS_RETRY_AFTER },
  });
}

/**
 * Claims the key in its own committed statement (the pool, not a transaction): resolves
 * null when this request now owns it, or the completed row to replay; throws 409/422.
 */
async function claimKey(ctx: Ctx, claim: IdempotencyClaim): Promise<IdempotencyRow | null> {
  const { db, settings } = ctx.deps;
  const limits = {
    retentionMs: retentionMs(ctx.deps),
    lockTimeoutMs: Number(settings.get("idempotency.lockTimeoutSeconds")) * 1000,
  };
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    if (await insertIdempotencyClaim(db, claim)) return null;
    const row = await findIdempotencyRow(db, claim);
    const view = row && { ...row, createdAt: +row.createdAt, lockedAt: +row.lockedAt };
    const verdict = classify(view, claim.fingerprint, claim.now.getTime(), limits);
    if (verdict === "replay") return row;
    if (verdict === "mismatch" || verdict === "in-progress") throw busy(verdict === "in-progress");
    // new (expired) or stale-lock (its process crashed): take it over unless another retry did.
    if (row && await updateIdempotencyClaim(db, claim, row.lockId)) return null;
  }
  throw busy(true);
}

/** Thrown inside the transaction to roll back an answer that must not be stored. */
class Unstored extends Error {
  constructor(readonly response: Response) {
    super("unstored response");
  }
}

/**
 * Runs the handler in one transaction (as `ctx.db`) that also stores its answer: both
 * commit or neither does. A 5xx, 429, 401 or thrown error rolls back and releases the key.
 */
async function runAndStore(ctx: Ctx, next: Next, keyed: Keyed): Promise<Response> {
  const { db, log } = ctx.deps;
  try {
    return await db.transaction(async (tx) => {
      ctx.db = tx;
      const res = await answerOf(ctx, next);
      if (!isStorableStatus(res.status)) throw new Unstored(res);
      const stored = await snapshot(res);
      const sealed = await keyed.material.seal(encodeStoredResponse(stored), aad(keyed.claim));
      if (!await completeIdempotencyRow(tx, keyed.claim, stored.status, sealed)) {
        throw busy(true); // our claim was taken over as stale: this run's effect is rolled back
      }
      return toResponse(stored);
    });
  } catch (err) {
    await deleteIdempotencyClaim(db, keyed.claim).catch((e) =>
      log.warn("idempotency key not released", { requestId: ctx.requestId, ...errorFields(e) })
    );
    if (err instanceof Unstored) return err.response;
    throw err;
  } finally {
    ctx.db = ctx.deps.db;
  }
}

/** The handler's answer, with a storable ApiError rendered as its problem response. */
async function answerOf(ctx: Ctx, next: Next): Promise<Response> {
  try {
    return await next();
  } catch (err) {
    if (!(err instanceof ApiError) || !isStorableStatus(err.status)) throw err;
    return problemResponse(err, {
      errorsBase: ctx.deps.config.errorsBase,
      instance: ctx.url.pathname,
      requestId: ctx.requestId,
    });
  }
}

// Binds a sealed response to its row, so it cannot be moved to another key or request.
function aad(c: IdempotencyClaim): string {
  return `${c.scope}\n${c.keyHash}\n${c.fingerprint}`;
}

async function snapshot(res: Response): Promise<StoredResponse> {
  const headers: [string, string][] = [];
  res.headers.forEach((v, k) => {
    if (!UNSTORED_HEADERS.has(k)) headers.push([k, v]);
  });
  return { status: res.status, headers, body: new Uint8Array(await res.arrayBuffer()) };
}

function toResponse(s: StoredResponse, extra: [string, string][] = []): Response {
  const body = s.body.byteLength ? s.body as Uint8Array<ArrayBuffer> : null;
  return new Response(body, { status: s.status, headers: [...s.headers, ...extra] });
}

async function replay(row: IdempotencyRow, keyed: Keyed): Promise<Response> {
  const plain = await keyed.material.open(new Uint8Array(row.response!), aad(keyed.claim));
  const stored = decodeStoredResponse(row.status!, plain);
  return toResponse(stored, [["idempotent-replayed", "true"]]);
}

/** Deletes keys older than `idempotency.retentionHours` (read now, so changes apply at once). */
export async function purgeIdempotencyKeys(deps: Deps): Promise<number> {
  return await deleteIdempotencyRowsBefore(deps.db, new Date(deps.now() - retentionMs(deps)));
}

function retentionMs(deps: Deps): number {
  return Number(deps.settings.get("idempotency.retentionHours")) * 3_600_000;
}

/** Runs `purgeIdempotencyKeys` every `intervalMs`; returns the function that stops it. */
export function startIdempotencyPurge(deps: Deps, intervalMs = PURGE_INTERVAL_MS): () => void {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const purged = await purgeIdempotencyKeys(deps);
      if (purged) deps.log.info("idempotency keys purged", { purged });
    } catch (err) {
      deps.log.warn("idempotency purge failed", errorFields(err));
    } finally {
      running = false;
    }
  }, intervalMs);
  return () => clearInterval(timer);
}
