/** Stand-ins for the data and ops APIs (built elsewhere) with their declared requirements. */
import { json } from "../../lib/http.ts";
import type { Route } from "../../routes/context.ts";

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
