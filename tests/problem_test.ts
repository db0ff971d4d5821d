import assert from "node:assert/strict";
import {
  ApiError,
  CODE_STATUS,
  internalError,
  MAX_FIELD_ERRORS,
  problemParts,
  problemResponse,
} from "../lib/problem.ts";

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

Deno.test("a problem answer stays small whatever the request held", () => {
  const errors = Array.from({ length: 80_000 }, (_, i) => ({
    pointer: `/k${i}`,
    detail: "is not a field of this request",
  }));
  errors[0] = { pointer: `/${"x".repeat(1_000_000)}`, detail: "is not a field of this request" };
  const err = new ApiError("validation-failed", "d".repeat(2_000_000), { errors });
  const body = String(
    problemParts(err, {
      errorsBase: "https://e.example/errors",
      instance: "/api/v1/auth/signup",
      requestId: "r1",
    }).body,
  );
  assert.ok(body.length < 5_000, `${body.length} bytes`);
  const parsed = JSON.parse(body);
  assert.equal(parsed.errors.length, MAX_FIELD_ERRORS + 1);
  assert.deepEqual(parsed.errors[0], {
    pointer: "",
    detail: "a member whose name is over 300 characters is not a field of this request",
  });
  assert.deepEqual(parsed.errors[1], { pointer: "/k1", detail: "is not a field of this request" });
  assert.deepEqual(parsed.errors.at(-1), {
    pointer: "",
    detail: `and ${80_000 - MAX_FIELD_ERRORS} more problems like these`,
  });
  assert.equal(parsed.detail.length, 301, "clipped, with an ellipsis");
});

Deno.test("an error answered again renders each request's id and instance", () => {
  const err = new ApiError("quota-exceeded", "retry in 3 s", {
    type: "https://e.test/quota",
    headers: { "retry-after": "3", "Content-Type": "text/plain" },
    extra: { "violated-policies": ["a"], title: "Overridden", requestId: "not this" },
  });
  const expected = (requestId: string, instance: string) =>
    JSON.stringify({
      type: "https://e.test/quota",
      title: "Overridden",
      status: 429,
      detail: "retry in 3 s",
      instance,
      requestId,
      "violated-policies": ["a"],
    });
  const first = problemParts(err, ctx);
  assert.equal(first.body, expected("rid-12345678", "/x"));
  first.headers.push(["x-added", "by a caller"]);
  const again = problemParts(err, { ...ctx, requestId: 'quote" and \\ slash' });
  assert.equal(again.body, expected('quote" and \\ slash', "/x"));
  assert.deepEqual(again.headers, [["content-type", "application/problem+json"], [
    "retry-after",
    "3",
  ]]);
  const elsewhere = problemParts(err, { ...ctx, instance: "/y", requestId: "r2" });
  assert.equal(elsewhere.body, expected("r2", "/y"));
  assert.equal(problemParts(err, { ...ctx, errorsBase: "https://other.test" }).status, 429);
});

Deno.test("a problem without extra members ends after its requestId", () => {
  const body = problemParts(new ApiError("not-found", "none"), ctx).body!;
  assert.ok(body.endsWith(',"requestId":"rid-12345678"}'), body);
  assert.deepEqual(Object.keys(JSON.parse(body)), [
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "requestId",
  ]);
});
