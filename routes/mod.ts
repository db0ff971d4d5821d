/** The one ordered route table. */
import type { Route } from "./context.ts";
import { healthRoutes } from "./health.ts";
import { opsCommandRoutes } from "./ops_commands.ts";

/** Every route proplab serves, with its requirements. */
export const ROUTES: readonly Route[] = [
  ...healthRoutes,
  ...opsCommandRoutes,
];
