/** A real proplab server on a free port, over a test database, with its log captured. */
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { buildApp, type Running } from "../../server.ts";
import type { Db } from "../../db/client.ts";
import type { Route } from "../../routes/context.ts";
import type { PasswordHasher } from "../../lib/password.ts";

/** A running test server. */
export interface TestServer {
  /** Absolute URL of `path` on this server. */
  url(path: string): string;
  running: Running;
  /** Every log line written so far, parsed. */
  logs: Record<string, unknown>[];
  /** Raw log lines, for secret scans. */
  rawLogs: string[];
  stop(): Promise<void>;
}

/** Starts a server on 127.0.0.1 and a free port; `env` overrides configuration variables. */
export async function startTestServer(
  db: Db,
  env: Record<string, string> = {},
  now?: () => number,
  routes?: readonly Route[],
  passwords?: PasswordHasher,
): Promise<TestServer> {
  const config = loadConfig({ LOG_LEVEL: "debug", ...env });
  const rawLogs: string[] = [];
  const log = createLogger(config.logLevel, (line) => rawLogs.push(line));
  const running = await buildApp(config, db, log, now, routes, passwords);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    running.app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    url: (path) => base + path,
    running,
    rawLogs,
    get logs() {
      return rawLogs.map((l) => JSON.parse(l));
    },
    async stop() {
      await server.shutdown();
      await running.close();
    },
  };
}
