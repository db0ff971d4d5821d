import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer } from "./support/server.ts";
import { DB_TEST } from "./support/assert.ts";
import { ROUTES } from "../routes/mod.ts";
import { buildOpenApi, openApiPath } from "../routes/openapi.ts";

const tdb = await openTestDb();

type Operation = Record<string, unknown> & {
  summary: string;
  security: Record<string, string[]>[];
  responses: Record<string, unknown>;
  parameters?: { name?: string; in?: string; $ref?: string }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
};

Deno.test("openApiPath() turns URLPattern parameters into OpenAPI templates", () => {
  assert.deepEqual(openApiPath("/api/v1/ops/config/:key"), {
    path: "/api/v1/ops/config/{key}",
    params: ["key"],
  });
  assert.deepEqual(openApiPath("/healthz"), { path: "/healthz", params: [] });
});

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/openapi.json describes exactly the routes of ROUTES" },
  async (t) => {
    const server = await startTestServer(tdb.db);
    try {
      const res = await fetch(server.url("/api/v1/openapi.json"));
      assert.equal(res.status, 200);
      assert.ok(res.headers.get("etag"));
      const doc = await res.json();
      assert.equal(doc.openapi, "3.1.0");
      assert.equal(doc.info.version, server.running.deps.version);

      const documented = new Set<string>();
      for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
        for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
      }
      const routed = new Set(ROUTES.map((r) => `${r.method} ${openApiPath(r.path).path}`));
      await t.step("no route in ROUTES is missing from the document", () => {
        assert.deepEqual([...routed].filter((k) => !documented.has(k)), []);
      });
      await t.step("the document has no operation that ROUTES lacks", () => {
        assert.deepEqual([...documented].filter((k) => !routed.has(k)), []);
      });

      await t.step("operationIds are unique", () => {
        const ids = ROUTES.map((r) =>
          doc.paths[openApiPath(r.path).path][r.method.toLowerCase()].operationId
        );
        assert.equal(new Set(ids).size, ROUTES.length);
      });
      await t.step("each operation carries summary, security, tier, scope and problems", () => {
        for (const route of ROUTES) {
          const { path, params } = openApiPath(route.path);
          const op: Operation = doc.paths[path][route.method.toLowerCase()];
          assert.equal(op.summary, route.summary);
          assert.deepEqual(op.security, route.auth.map((k) => ({ [k]: [] })));
          assert.equal(op["x-required-tier"], route.tier);
          assert.equal(op["x-required-scope"], route.scope);
          assert.equal(op["x-rate-limit-class"], route.limit);
          for (const kind of route.auth) assert.ok(doc.components.securitySchemes[kind]);
          for (const name of params) {
            assert.ok(op.parameters?.some((p) => p.in === "path" && p.name === name));
          }
          // Query parameters and bodies as the route table declares them
          // (tests/openapi_contract_test.ts checks those against the handlers).
          const query = (op.parameters ?? []).filter((p) => p.in === "query");
          assert.deepEqual(query.map((p) => p.name), (route.query ?? []).map((q) => q.name));
          assert.deepEqual(op.requestBody?.content["application/json"].schema, route.body);
          // Success answers: every route documents its own (each test server checks 2xx
          // answers against them: tests/support/server.ts).
          assert.ok(route.responses, `${route.method} ${route.path} documents no success answer`);
          for (const [status, { schema }] of Object.entries(route.responses)) {
            const documented = op.responses[status] as {
              content?: Record<string, { schema: unknown }>;
            };
            assert.deepEqual(documented.content?.["application/json"].schema, schema);
          }
          if (route.auth.length) {
            assert.ok(op.responses["401"] && op.responses["403"], `${path} lacks 401/403`);
          }
          for (const r of Object.values(op.responses) as { $ref?: string }[]) {
            if (!r.$ref) continue;
            const name = r.$ref.split("/").at(-1)!;
            assert.ok(doc.components.responses[name], `${r.$ref} is not defined`);
          }
        }
      });
    } finally {
      await server.stop();
    }
  },
);

Deno.test("buildOpenApi() includes a route added to the table", () => {
  const extra = [...ROUTES, {
    method: "DELETE" as const,
    path: "/api/v1/things/:id",
    auth: ["jwt" as const],
    summary: "Delete a thing",
    handler: () => new Response(null),
  }];
  const doc = buildOpenApi(extra, "0.0.0") as { paths: Record<string, Record<string, unknown>> };
  assert.ok(doc.paths["/api/v1/things/{id}"].delete);
});
