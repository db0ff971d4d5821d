import assert from "node:assert/strict";
import { decodeCursor, encodeCursor, pageOf, parsePageRequest } from "../lib/pagination.ts";
import { ApiError } from "../lib/problem.ts";

Deno.test("encodeCursor() and decodeCursor() round-trip", () => {
  const c = encodeCursor(new Date("2026-01-02T03:04:05.000Z"), "abc");
  assert.deepEqual(decodeCursor(c), { at: "2026-01-02T03:04:05.000Z", id: "abc" });
});

Deno.test("decodeCursor() answers 400 for garbage", () => {
  for (const bad of ["", "!!!", btoa("[1,2]"), btoa('["not a date","x"]')]) {
    assert.throws(
      () => decodeCursor(bad),
      (e: unknown) => e instanceof ApiError && e.status === 400,
    );
  }
});

Deno.test("parsePageRequest() validates limit", () => {
  assert.equal(parsePageRequest(new URLSearchParams()).limit, 50);
  assert.equal(parsePageRequest(new URLSearchParams("limit=7")).limit, 7);
  for (const bad of ["0", "201", "-1", "abc", "1.5"]) {
    assert.throws(
      () => parsePageRequest(new URLSearchParams(`limit=${bad}`)),
      (e: unknown) => e instanceof ApiError && e.status === 422,
    );
  }
});

Deno.test("pageOf() gives a next cursor only when there is more", () => {
  const rows = [1, 2, 3].map((n) => ({ id: String(n), at: new Date(n * 1000) }));
  const full = pageOf(rows, 2, (r) => r);
  assert.equal(full.items.length, 2);
  assert.deepEqual(decodeCursor(full.nextCursor!), { at: new Date(2000).toISOString(), id: "2" });
  assert.equal(pageOf(rows, 3, (r) => r).nextCursor, null);
});
