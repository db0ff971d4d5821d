/**
 * openapi.json's query parameters and request bodies, checked against the routes by calling
 * them: a documented parameter or body member is one the route validates, and the route
 * validates nothing the document leaves out. Every route is called as an admin (who may
 * call them all, unlimited), with a random UUID for each path parameter.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { DB_TEST } from "./support/assert.ts";
import { accessTokenFor, createUser } from "./support/fixtures.ts";
import { ROUTES } from "../routes/mod.ts";
import type { Route } from "../routes/context.ts";

const tdb = await openTestDb();

/** A value each documented query parameter refuses, and one it takes (for required ones). */
const BAD: Record<string, string> = {
  limit: "0",
  cursor: "not-a-cursor",
  date: "2026-02-30",
  state: "nope",
  type: "nope",
  jobId: "nope",
  key: "nope",
};
const GOOD: Record<string, string> = { date: "2026-05-27" };
// A path parameter that names something real where a random UUID would answer 404 first.
const PATH_VALUES: Record<string, string> = { key: "ratelimit.ops.perMinute" };

const documentedNames = new Set(ROUTES.flatMap((r) => (r.query ?? []).map((q) => q.name)));

type Problem = { status: number; errors?: { pointer: string; detail: string }[] };

async function call(
  s: TestServer,
  jwt: string,
  route: Route,
  opts: { query?: Record<string, string> | [string, string][]; body?: unknown },
): Promise<Problem> {
  const path = route.path.replace(
    /:(\w+)/g,
    (_, n: string) => PATH_VALUES[n] ?? crypto.randomUUID(),
  );
  const url = new URL(s.url(path));
  const query = Array.isArray(opts.query) ? opts.query : Object.entries(opts.query ?? {});
  for (const [k, v] of query) url.searchParams.append(k, v);
  const res = await fetch(url, {
    method: route.method,
    headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  const isJson = (res.headers.get("content-type") ?? "").includes("json") && text !== "";
  return { status: res.status, ...(isJson ? JSON.parse(text) : {}) };
}

const points = (p: Problem, name: string) =>
  p.status === 422 && (p.errors ?? []).some((e) => e.pointer === `/${name}`);

async function withAdmin(fn: (s: TestServer, jwt: string) => Promise<void>) {
  await tdb.reset();
  const server = await startTestServer(tdb.db);
  try {
    await fn(server, await accessTokenFor(server, await createUser(tdb.db, { tier: "admin" })));
  } finally {
    await server.stop();
  }
}

Deno.test({
  ...DB_TEST,
  name: "openapi.json: each GET route validates exactly the query parameters it documents",
}, async () => {
  await withAdmin(async (s, jwt) => {
    for (const route of ROUTES.filter((r) => r.method === "GET")) {
      const documented = new Map((route.query ?? []).map((q) => [q.name, q]));
      const required = Object.fromEntries(
        [...documented.values()].filter((q) => q.required).map((q) => [q.name, GOOD[q.name]]),
      );
      for (const name of documentedNames) {
        const p = await call(s, jwt, route, { query: { ...required, [name]: BAD[name] } });
        const where = `GET ${route.path}?${name}=${BAD[name]} → ${p.status}`;
        const refused = name === "cursor" ? p.status === 400 : points(p, name);
        assert.equal(refused, documented.has(name), where);
      }
      // A documented parameter given twice is refused rather than one of them guessed.
      for (const name of documented.keys()) {
        const value = GOOD[name] ?? "1";
        const twice = [...Object.entries(required), [name, value], [name, value]];
        const p = await call(s, jwt, route, { query: twice as [string, string][] });
        assert.ok(points(p, name), `GET ${route.path}?${name}&${name} → ${p.status}`);
      }
    }
  });
});

Deno.test({
  ...DB_TEST,
  name: "openapi.json: each route's documented body members are its fields, and only those",
}, async () => {
  await withAdmin(async (s, jwt) => {
    const unknownField = (p: Problem, name: string) =>
      (p.errors ?? []).some((e) =>
        e.pointer === `/${name}` && /not a field|Send only/.test(e.detail)
      );
    for (const route of ROUTES.filter((r) => r.method !== "GET")) {
      const stray = await call(s, jwt, route, { body: { zzUnknown: 1 } });
      const where = `${route.method} ${route.path}`;
      if (!route.body) {
        assert.ok(!points(stray, "zzUnknown"), `${where} reads a body it does not document`);
        continue;
      }
      assert.ok(unknownField(stray, "zzUnknown"), `${where} accepts an undocumented member`);
      const members = Object.keys(route.body.properties as Record<string, unknown>);
      for (const name of members) {
        const p = await call(s, jwt, route, { body: { [name]: { wrong: [1] } } });
        assert.ok(p.status >= 400, `${where} took {${name}: {…}}`);
        assert.ok(!unknownField(p, name), `${where} documents ${name} but does not take it`);
      }
    }
  });
});
