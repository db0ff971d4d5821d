/** The one ordered route table. */
import type { Route } from "./context.ts";
import { healthRoutes } from "./health.ts";
import { openapiRoutes } from "./openapi.ts";
import { opsStatusRoutes } from "./ops_status.ts";
import { opsConfigRoutes } from "./ops_config.ts";
import { dataRoutes } from "./data.ts";
import { authRoutes } from "./auth.ts";
import { meRoutes } from "./me.ts";
import { apiKeyRoutes } from "./api_keys.ts";
import { adminRoutes } from "./admin.ts";
import { opsTokenRoutes } from "./ops_tokens.ts";
import { opsCommandRoutes } from "./ops_commands.ts";

/** Every route proplab serves, with its requirements. */
export const ROUTES: readonly Route[] = [
  ...healthRoutes,
  ...openapiRoutes,
  ...opsStatusRoutes,
  ...opsConfigRoutes,
  ...dataRoutes,
  ...authRoutes,
  ...meRoutes,
  ...apiKeyRoutes,
  ...adminRoutes,
  ...opsTokenRoutes,
  ...opsCommandRoutes,
];
