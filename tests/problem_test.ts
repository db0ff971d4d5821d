import assert from "node:assert/strict";
import { ApiError, CODE_STATUS, internalError, problemResponse } from "../lib/problem.ts";

const ctx = { errorsBase: "https://e.test/errors", instance: "/x", requestId: "rid-12345678" };

Deno.test("problemResponse() renders the RFC 9457 members and content type", async () => {
  const res = problemResponse(new ApiError("not-found", "No pick 9"), ctx);
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.deepEqual(await res.json(), {
    type: "https://e.test/errors/not-found",
    title: "Not found",
    status: 404,
    detail: "No pick 9",
    instance: "/x",
    requestId: "rid-12345678",
  });
});

Deno.test("problemResponse() carries field errors, extra members and headers", async () => {
  const err = new ApiError("validation-failed", "bad", {
    errors: [{ pointer: "/name", detail: "must not be empty" }],
    headers: { "retry-after": "3" },
    extra: { "violated-policies": ["a"] },
  });
  const res = problemResponse(err, ctx);
  assert.equal(res.status, 422);
  assert.equal(res.headers.get("retry-after"), "3");
  const body = await res.json();
  assert.deepEqual(body.errors, [{ pointer: "/name", detail: "must not be empty" }]);
  assert.deepEqual(body["violated-policies"], ["a"]);
});

Deno.test("internalError() says nothing about the cause", () => {
  const err = internalError();
  assert.equal(err.status, 500);
  assert.ok(!err.detail.includes("Error"));
});

Deno.test("CODE_STATUS maps every code to a 4xx or 5xx status", () => {
  for (const { status } of Object.values(CODE_STATUS)) assert.ok(status >= 400 && status < 600);
});
