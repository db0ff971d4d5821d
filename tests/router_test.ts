import assert from "node:assert/strict";
import { createRouter, type RouteShape } from "../lib/router.ts";

const routes: (RouteShape & { name: string })[] = [
  { method: "GET", path: "/a", name: "getA" },
  { method: "POST", path: "/a", name: "postA" },
  { method: "GET", path: "/items/:id", name: "getItem" },
  { method: "DELETE", path: "/items/:id", name: "deleteItem" },
  { method: "POST", path: "/items/:id/cancel", name: "cancel" },
];
const router = createRouter(routes);

Deno.test("match() finds a static route by method and path", () => {
  const m = router.match("POST", "/a");
  assert.equal(m.kind, "found");
  if (m.kind === "found") assert.equal(m.route.name, "postA");
});

Deno.test("match() extracts path parameters", () => {
  const m = router.match("DELETE", "/items/42");
  assert.equal(m.kind, "found");
  if (m.kind === "found") assert.deepEqual(m.params, { id: "42" });
});

Deno.test("match() serves HEAD from the GET route", () => {
  const m = router.match("HEAD", "/items/7");
  assert.equal(m.kind, "found");
  if (m.kind === "found") assert.equal(m.route.name, "getItem");
});

Deno.test("match() answers 405 with every allowed method, HEAD included", () => {
  assert.deepEqual(router.match("PUT", "/a"), {
    kind: "method-not-allowed",
    allow: ["GET", "HEAD", "POST"],
  });
  assert.deepEqual(router.match("POST", "/items/1"), {
    kind: "method-not-allowed",
    allow: ["DELETE", "GET", "HEAD"],
  });
});

Deno.test("match() answers not-found for unknown paths and partial matches", () => {
  assert.equal(router.match("GET", "/nope").kind, "not-found");
  assert.equal(router.match("GET", "/items").kind, "not-found");
  assert.equal(router.match("GET", "/items/1/2").kind, "not-found");
  assert.equal(router.match("GET", "/a/").kind, "not-found");
});

Deno.test("createRouter() refuses a duplicate static route", () => {
  assert.throws(() => createRouter([{ method: "GET", path: "/x" }, { method: "GET", path: "/x" }]));
});
