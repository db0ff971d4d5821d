/** Wiring: open the database, migrate, build deps once, serve, shut down cleanly. */
import type { Config } from "./lib/config.ts";
import type { Logger } from "./lib/log.ts";
import { errorFields } from "./lib/log.ts";
import { VERSION } from "./lib/version.ts";
import { absorbBackgroundDisconnects, type Db, openPglite, openPostgres } from "./db/client.ts";
import { loadMigrations, migrate } from "./db/migrate.ts";
import { createSettings } from "./db/settings.ts";
import { startHeartbeat } from "./db/instances.ts";
import { deleteRequestErrorsBefore, insertRequestError } from "./db/request_errors.ts";
import { type BoundedPool, createBoundedPool, PoolFull, withTimeout } from "./lib/async.ts";
import { type App, createApp } from "./app.ts";
import { ROUTES } from "./routes/mod.ts";
import type { Ctx, Deps, Route } from "./routes/context.ts";
import { createIdempotency, startIdempotencyPurge } from "./routes/idempotency.ts";
import { createIdentityService } from "./routes/authenticate.ts";
import { bootstrapAdmin } from "./routes/admin.ts";
import type { PasswordHasher } from "./lib/password.ts";
import { createRateLimit, startRateLimitPruner } from "./routes/ratelimit.ts";
import { createDataCache } from "./routes/data.ts";
import { createGate } from "./routes/gate.ts";
import { createWorker, type Worker } from "./worker/worker.ts";

/** Opens the configured database: PostgreSQL when DATABASE_URL is set, else PGlite in DATA_DIR. */
export async function openDatabase(config: Config, log: Logger): Promise<Db> {
  if (config.databaseUrl) {
    return openPostgres(config.databaseUrl, {
      onAvailability: (up, err) =>
        up
          ? log.info("database reachable again")
          : log.error("database unavailable: answering 503 until it returns", errorFields(err)),
    });
  }
  if (Deno.env.get("DENO_DEPLOYMENT_ID")) {
    throw new Error("DATABASE_URL is required on Deno Deploy (there is no data dir to write)");
  }
  return await openPglite(
    config.dataDir,
    () =>
      log.info("creating the embedded database (first start: a few seconds)", {
        dataDir: config.dataDir,
      }),
  );
}

/** Applies pending migrations and logs what was applied. */
export async function migrateDatabase(db: Db, log: Logger): Promise<string[]> {
  const applied = await migrate(db, await loadMigrations());
  log.info("migrations", { applied, database: db.kind });
  return applied;
}

/** Dependencies plus the way to release them. */
export interface Running {
  deps: Deps;
  app: App;
  /** The job worker, when WORKER is on. */
  worker: Worker | null;
  close(): Promise<void>;
}

/** Builds deps and the app over an open, migrated database. */
export async function buildApp(
  config: Config,
  db: Db,
  log: Logger,
  now: () => number = Date.now,
  routes: readonly Route[] = ROUTES,
  passwords?: PasswordHasher,
): Promise<Running> {
  const settings = await createSettings(db, log);
  const gate = createGate(db, now);
  const identityService = await createIdentityService({ db, config, log, now, passwords, gate });
  const deps: Deps = {
    config,
    db,
    log,
    settings,
    now,
    version: VERSION,
    instanceId: crypto.randomUUID(),
    startedAt: now(),
    routes,
    idempotency: createIdempotency(),
    identity: identityService.identity,
    authenticate: identityService.authenticate,
    rateLimit: createRateLimit(log, {
      gate,
      forget: identityService.forget,
      touch: identityService.identity.usage.touch,
    }),
    dataCache: createDataCache(db),
  };
  // 503s are recorded in the background, at most two at a time (the rest only logged): in an
  // outage they come fast, and each attempt would hold a pool connection through the
  // driver's reconnect waits, ahead of the requests that need one.
  const background = createBoundedPool(2, 0);
  deps.recordError = (ctx, status) => recordRequestError(deps, ctx, status, background);
  const heartbeat = await startHeartbeat(
    db,
    {
      id: deps.instanceId,
      role: config.workerEnabled ? "api+worker" : "api",
      version: VERSION,
      startedAt: deps.startedAt,
    },
    now,
    log,
  );
  await bootstrapAdmin(deps);
  const worker = config.workerEnabled ? createWorker({ db, log, config }) : null;
  if (worker) {
    deps.worker = worker;
    worker.start();
  }
  const app = createApp(deps, routes);
  const stopPurge = startIdempotencyPurge(deps);
  const pruner = startRateLimitPruner(db, log, now);
  return {
    deps,
    app,
    worker,
    async close() {
      await heartbeat.stop();
      stopPurge();
      await pruner.stop();
      // The running job step finishes; the job goes back to the queue for the next start.
      await worker?.stop(config.shutdownGraceMs);
      await settings.stop();
      await identityService.stop();
    },
  };
}

const RECORD_ERROR_TIMEOUT_MS = 500;
const REQUEST_ERROR_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

// Bounded and never throwing: a 5xx caused by a database outage must still be answered fast.
async function recordRequestError(
  deps: Deps,
  ctx: Ctx,
  status: number,
  background: BoundedPool,
): Promise<void> {
  const at = deps.now();
  const write = async () => {
    await insertRequestError(deps.db, {
      requestId: ctx.requestId,
      method: ctx.req.method,
      route: ctx.route?.path ?? null,
      status,
      instanceId: deps.instanceId,
      at: new Date(at),
    });
    await deleteRequestErrorsBefore(deps.db, new Date(at - REQUEST_ERROR_RETENTION_MS));
  };
  const bounded = () =>
    withTimeout(write(), RECORD_ERROR_TIMEOUT_MS, "recording the error timed out");
  const failed = (err: unknown) =>
    deps.log.warn("recording a 5xx failed", { requestId: ctx.requestId, ...errorFields(err) });
  if (status !== 503) return await bounded().catch(failed);
  // A 503 means the database is likely down: record best effort without delaying the answer.
  background.run(bounded).catch((err) =>
    err instanceof PoolFull
      ? deps.log.debug("a 503 not recorded: two recordings under way", { requestId: ctx.requestId })
      : failed(err)
  );
}

/** Runs the HTTP server until SIGTERM/SIGINT, then drains and closes the database. */
export async function serve(config: Config, log: Logger): Promise<void> {
  const started = performance.now();
  // Fail before the slow part (a first start's initdb) when the port is taken.
  try {
    Deno.listen({ port: config.port, hostname: config.hostname }).close();
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) throw err;
    const where = `${config.hostname}:${config.port}`;
    throw new Error(`cannot listen on ${where}: ${(err as Error).message} (check HOST and PORT)`);
  }
  absorbBackgroundDisconnects((msg, err) => log.debug(msg, errorFields(err)));
  const db = await openDatabase(config, log);
  await migrateDatabase(db, log);
  const running = await buildApp(config, db, log);
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) =>
      log.info("listening", {
        hostname,
        port,
        database: db.kind === "postgres" ? "postgresql" : `pglite:${config.dataDir}`,
        startupMs: Math.round(performance.now() - started),
        version: VERSION,
      }),
    onError: (err) => {
      log.error("server error", errorFields(err));
      return new Response("internal error", { status: 500 });
    },
  }, running.app.fetch);

  const stop = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
  const signal = await stop;
  log.info("shutting down", { signal, graceMs: config.shutdownGraceMs });
  // Deno's server.shutdown() cuts off request bodies still being read, so the app drains
  // first (in-flight requests finish, new ones get 503 + Connection: close), then the
  // listener closes.
  const drained = await running.app.drain(config.shutdownGraceMs);
  if (!drained) log.warn("shutdown grace elapsed with requests still in flight");
  await withTimeout(server.shutdown(), 1000, "server shutdown").catch(() => {});
  await running.close();
  await db.close();
  log.info("stopped", { signal });
}
