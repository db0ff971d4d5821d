/**
 * The `deno serve` / Deno Deploy entry: `export default { fetch }`. A separate module from
 * main.ts because `import.meta.main` is true under `deno serve` too, so one module cannot
 * tell whether to run the CLI (denoland/deno#25179).
 */
import { loadConfig } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { buildApp, migrateDatabase, openDatabase } from "./server.ts";
import type { App } from "./app.ts";

// Built on the first request and kept for the life of the isolate: the one piece of module
// state, because `deno serve` gives no start-up hook.
let served: Promise<App> | null = null;

async function buildServed(): Promise<App> {
  const config = loadConfig(Deno.env.toObject());
  const log = createLogger(config.logLevel);
  const db = await openDatabase(config, log);
  await migrateDatabase(db, log);
  const running = await buildApp(config, db, log);
  // The worker, heartbeat and pollers keep the isolate alive, so `deno serve` would not exit
  // on SIGTERM by itself: drain, release them, close the database, then exit.
  const stop = async () => {
    await running.app.drain(config.shutdownGraceMs);
    await running.close();
    await db.close();
    Deno.exit(0);
  };
  try {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, stop);
  } catch {
    // No signals where the platform owns the process (Deno Deploy).
  }
  return running.app;
}

export default {
  async fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    served ??= buildServed();
    return (await served).fetch(req, info as never);
  },
} satisfies Deno.ServeDefaultExport;
