/**
 * A proplab server with the idempotency test routes, run as a child process by
 * tests/idempotency_process_test.ts (kill -9 mid-request; two processes on one PostgreSQL).
 * Environment as for `proplab serve`, plus LOCK_TIMEOUT_SECONDS (idempotency.lockTimeoutSeconds).
 */
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { upsertSetting } from "../../db/settings.ts";
import { buildApp, migrateDatabase, openDatabase } from "../../server.ts";
import { ROUTES } from "../../routes/mod.ts";
import { createThingsTable, testAuthenticate, thingRoutes } from "./idempotency_fixtures.ts";

const config = loadConfig(Deno.env.toObject());
const log = createLogger(config.logLevel);
const db = await openDatabase(config, log);
await migrateDatabase(db, log);
await createThingsTable(db);
const lockTimeout = Deno.env.get("LOCK_TIMEOUT_SECONDS");
if (lockTimeout) {
  await upsertSetting(db, "idempotency.lockTimeoutSeconds", Number(lockTimeout), "test");
}
const running = await buildApp(config, db, log, Date.now, [...ROUTES, ...thingRoutes()]);
running.deps.authenticate = (req) => testAuthenticate(req);
const server = Deno.serve(
  { port: config.port, hostname: config.hostname, onListen: () => log.info("listening") },
  running.app.fetch,
);
await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
await server.shutdown();
await running.close();
await db.close();
