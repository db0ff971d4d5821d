/** User administration (admin JWTs only) and the bootstrap of the first admin. */
import { ApiError } from "../lib/problem.ts";
import { json, readJson } from "../lib/http.ts";
import { objectBody, uuidParam } from "../lib/fields.ts";
import { PAGE_QUERY, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { type Tier, TIERS } from "../lib/policy.ts";
import { insertUser, isUsersEmpty, listUsersPage, updateUserAccess } from "../db/users.ts";
import { identityOf, publicUser } from "./auth.ts";
import type { Ctx, Deps, Route } from "./context.ts";
import { page, USER } from "./schemas.ts";

/** Creates the ADMIN_EMAIL admin when the database has no user yet; returns whether it did. */
export async function bootstrapAdmin(deps: Deps): Promise<boolean> {
  const { adminEmail, adminPassword } = deps.config;
  const empty = await isUsersEmpty(deps.db);
  // Say what an operator would otherwise have to guess: how to get in, or why nothing happened.
  if (empty && !adminEmail) {
    deps.log.warn(
      "no users yet: set ADMIN_EMAIL and ADMIN_PASSWORD, or run `proplab create-admin --email …`",
    );
  }
  if (!empty && adminEmail) deps.log.info("ADMIN_EMAIL ignored: the database has users already");
  if (!adminEmail || !adminPassword || !empty) return false;
  const passwordHash = await identityOf(deps).passwords.hash(adminPassword);
  const user = await insertUser(deps.db, {
    id: crypto.randomUUID(),
    email: adminEmail,
    passwordHash,
    tier: "admin",
    at: new Date(deps.now()),
  });
  if (user) deps.log.info("bootstrap admin created", { userId: user.id });
  return user !== null;
}

function shownUser(u: Parameters<typeof publicUser>[0]) {
  return { ...publicUser(u), updatedAt: u.updated_at.toISOString() };
}

async function listUsers(ctx: Ctx): Promise<Response> {
  const page = parsePageRequest(ctx.url.searchParams);
  const rows = await listUsersPage(ctx.db, page);
  const { items, nextCursor } = pageOf(rows, page.limit, (r) => ({ at: r.created_at, id: r.id }));
  return json({ items: items.map(shownUser), nextCursor });
}

function accessChange(value: unknown, self: boolean) {
  const f = objectBody(value, ["tier", "disabled"]);
  const { tier, disabled } = f.body;
  if (tier !== undefined && !(TIERS as readonly unknown[]).includes(tier)) {
    f.fail("/tier", `tier must be one of ${TIERS.join(", ")}`);
  }
  if (disabled !== undefined && typeof disabled !== "boolean") {
    f.fail("/disabled", "disabled must be true or false");
  }
  if (tier === undefined && disabled === undefined) f.fail("", "send tier, disabled or both");
  // An admin cannot lock themselves out (the last admin would be gone for good).
  if (self && (disabled === true || (tier !== undefined && tier !== "admin"))) {
    f.fail("", "you cannot disable or demote your own account");
  }
  f.done();
  return { tier: (tier ?? null) as Tier | null, disabled: (disabled ?? null) as boolean | null };
}

async function patchUser(ctx: Ctx): Promise<Response> {
  const id = uuidParam(ctx.params, "id", "user");
  const change = accessChange(await readJson(ctx.req), id === ctx.principal!.userId);
  const user = await updateUserAccess(ctx.db, id, change, new Date(ctx.deps.now()));
  if (!user) throw new ApiError("not-found", `No user with id ${id}`);
  ctx.deps.log.info("user access changed", {
    requestId: ctx.requestId,
    userId: id,
    by: ctx.principal!.subject,
    ...change,
  });
  return json(shownUser(user));
}

const base = { auth: ["jwt"], tier: "admin" } as const;

/** Routes of this file. */
export const adminRoutes: Route[] = [
  {
    ...base,
    method: "GET",
    path: "/api/v1/admin/users",
    summary: "List users",
    query: PAGE_QUERY,
    responses: { 200: { description: "A page of users", schema: page(USER) } },
    handler: listUsers,
  },
  {
    ...base,
    method: "PATCH",
    path: "/api/v1/admin/users/:id",
    summary: "Change a user's tier or disabled flag",
    body: {
      type: "object",
      properties: { tier: { enum: TIERS }, disabled: { type: "boolean" } },
      minProperties: 1,
      additionalProperties: false,
    },
    responses: { 200: { description: "The user as changed", schema: USER } },
    handler: patchUser,
  },
];
