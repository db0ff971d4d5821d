/** A real proplab server on a free port, over a test database, with its log captured. */
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { buildApp, type Running } from "../../server.ts";
import type { Db } from "../../db/client.ts";
import type { Route } from "../../routes/context.ts";
import type { PasswordHasher } from "../../lib/password.ts";
import { createRouter, type Router } from "../../lib/router.ts";
import { schemaErrors } from "../../lib/json_schema.ts";
import { ROUTES } from "../../routes/mod.ts";

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
  // Every 2xx answer is checked against its route's documented responses (openapi.json).
  const router = createRouter(routes ?? ROUTES);
  const checks: Promise<string[]>[] = [];
  const serve = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const res = await running.app.fetch(req, info);
    if (res.ok) checks.push(undocumented(router, req, res.clone()));
    return res;
  };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, serve);
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
      const problems = (await Promise.all(checks)).flat();
      if (problems.length) {
        throw new Error(`answers that openapi.json does not describe:\n${problems.join("\n")}`);
      }
    },
  };
}

/** How a 2xx answer departs from its route's documented `responses` (none when it fits). */
async function undocumented(router: Router<Route>, req: Request, res: Response): Promise<string[]> {
  const text = await res.text();
  const { pathname } = new URL(req.url);
  const match = router.match(req.method === "HEAD" ? "GET" : req.method, pathname);
  if (match.kind !== "found" || !match.route.responses) return [];
  const where = `${req.method} ${pathname} → ${res.status}`;
  const documented = match.route.responses[res.status];
  if (!documented) return [`${where}: status not documented`];
  if (!documented.schema || req.method === "HEAD" || text === "") return [];
  return schemaErrors(documented.schema, JSON.parse(text)).map((e) => `${where}: ${e}`);
}
