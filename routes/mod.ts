/** The one ordered route table. */
import type { Route } from "./context.ts";
import { healthRoutes } from "./health.ts";
import { openapiRoutes } from "./openapi.ts";
import { opsStatusRoutes } from "./ops_status.ts";
import { opsConfigRoutes } from "./ops_config.ts";
import { dataRoutes } from "./data.ts";

/** Every route proplab serves, with its requirements. */
export const ROUTES: readonly Route[] = [
  ...healthRoutes,
  ...openapiRoutes,
  ...opsStatusRoutes,
  ...opsConfigRoutes,
  ...dataRoutes,
];
