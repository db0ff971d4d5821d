/** Wiring: open the database, migrate, build deps once, serve, shut down cleanly. */
import type { Config } from "./lib/config.ts";
import type { Logger } from "./lib/log.ts";
import { errorFields } from "./lib/log.ts";
import { VERSION } from "./lib/version.ts";
import { type Db, openPglite, openPostgres } from "./db/client.ts";
import { loadMigrations, migrate } from "./db/migrate.ts";
import { createSettings } from "./db/settings.ts";
import { type App, createApp } from "./app.ts";
import { ROUTES } from "./routes/mod.ts";
import type { Deps, Route } from "./routes/context.ts";
import { createWorker, type Worker } from "./worker/worker.ts";

/** Opens the configured database: PostgreSQL when DATABASE_URL is set, else PGlite in DATA_DIR. */
export async function openDatabase(config: Config): Promise<Db> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl);
  if (Deno.env.get("DENO_DEPLOYMENT_ID")) {
    throw new Error("DATABASE_URL is required on Deno Deploy (there is no data dir to write)");
  }
  await Deno.mkdir(config.dataDir, { recursive: true });
  return await openPglite(config.dataDir);
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
): Promise<Running> {
  const settings = await createSettings(db, log);
  const deps: Deps = {
    config,
    db,
    log,
    settings,
    now,
    version: VERSION,
    instanceId: crypto.randomUUID(),
    startedAt: now(),
  };
  const worker = config.workerEnabled ? createWorker({ db, log, config }) : null;
  if (worker) {
    deps.worker = worker;
    worker.start();
  }
  const app = createApp(deps, routes);
  return {
    deps,
    app,
    worker,
    async close() {
      // The running job step finishes; the job goes back to the queue for the next start.
      await worker?.stop(config.shutdownGraceMs);
      await settings.stop();
    },
  };
}

/** Runs the HTTP server until SIGTERM/SIGINT, then drains and closes the database. */
export async function serve(config: Config, log: Logger): Promise<void> {
  const started = performance.now();
  const db = await openDatabase(config);
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
  const drained = await Promise.race([
    server.shutdown().then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), config.shutdownGraceMs)),
  ]);
  if (!drained) log.warn("shutdown grace elapsed with requests still in flight");
  await running.close();
  await db.close();
  log.info("stopped", { signal });
}
