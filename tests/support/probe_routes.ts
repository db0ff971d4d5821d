/** Stand-ins for the data and ops APIs (built elsewhere) with their declared requirements. */
import { json } from "../../lib/http.ts";
import type { Route } from "../../routes/context.ts";
import { ROUTES } from "../../routes/mod.ts";
import { startTestServer, type TestServer } from "./server.ts";
import type { TestDb } from "./db.ts";

const whoami: Route["handler"] = (ctx) => json({ principal: ctx.principal });

/** A data route (API key or JWT, sharp) and an ops route (ops token or JWT, admin, ops:read). */
export const PROBE_ROUTES: Route[] = [
  {
    method: "GET",
    path: "/api/v1/data/probe",
    auth: ["jwt", "apiKey"],
    tier: "sharp",
    summary: "probe",
    handler: whoami,
  },
  {
    method: "GET",
    path: "/api/v1/ops/probe",
    auth: ["jwt", "opsToken"],
    tier: "admin",
    scope: "ops:read",
    summary: "probe",
    handler: whoami,
  },
];

/**
 * Runs `fn` against a fresh server over an emptied `tdb`, with the real routes plus the
 * probes, on a strictly increasing clock (rows made in one millisecond still list in order).
 */
export async function withProbeServer(
  tdb: TestDb,
  fn: (s: TestServer) => Promise<void>,
): Promise<void> {
  await tdb.reset();
  let last = 0;
  const now = () => (last = Math.max(Date.now(), last + 1));
  const server = await startTestServer(tdb.db, {}, now, [...ROUTES, ...PROBE_ROUTES]);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}
