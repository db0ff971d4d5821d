/** The caller's own profile. */
import { ApiError } from "../lib/problem.ts";
import { json } from "../lib/http.ts";
import { findUserById } from "../db/users.ts";
import { publicUser } from "./auth.ts";
import type { Ctx, Route } from "./context.ts";
import { ME } from "./schemas.ts";

async function me(ctx: Ctx): Promise<Response> {
  const p = ctx.principal!;
  const user = await findUserById(ctx.db, p.userId!);
  if (!user) throw new ApiError("not-found", "This account no longer exists");
  return json({ ...publicUser(user), tier: p.tier, scopes: p.scopes });
}

/** Routes of this file. */
export const meRoutes: Route[] = [
  {
    method: "GET",
    path: "/api/v1/me",
    auth: ["jwt"],
    tier: "free",
    summary: "The caller's profile, tier and scopes",
    responses: { 200: { description: "The caller", schema: ME } },
    handler: me,
  },
];
