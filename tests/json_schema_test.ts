import assert from "node:assert/strict";
import { schemaErrors } from "../lib/json_schema.ts";

const USER = {
  type: "object",
  required: ["id", "tier"],
  properties: {
    id: { type: "string", format: "uuid" },
    tier: { enum: ["free", "sharp"] },
    name: { type: ["string", "null"], minLength: 1, maxLength: 3 },
    born: { type: "string", format: "date" },
    at: { type: "string", format: "date-time" },
    n: { type: "integer", minimum: 0, maximum: 9 },
    tags: { type: "array", minItems: 1, maxItems: 2, items: { type: "string" } },
  },
  additionalProperties: false,
};
const ID = "6e3bc787-5119-43d8-8f9a-2f31b9be7636";

Deno.test("schemaErrors(): a fitting value has none", () => {
  const ok = {
    id: ID,
    tier: "free",
    name: null,
    born: "2026-05-27",
    at: "2026-11-22T23:13:08.553Z",
    n: 9,
    tags: ["a"],
  };
  assert.deepEqual(schemaErrors(USER, ok), []);
  assert.deepEqual(schemaErrors({ type: "number" }, 3), [], "an integer is a number");
  assert.deepEqual(schemaErrors({}, { anything: [1] }), [], "an empty schema takes anything");
});

Deno.test("schemaErrors(): each keyword reports where the value breaks it", () => {
  const errors = schemaErrors(USER, {
    id: "nope",
    tier: "gold",
    name: "long",
    born: "2026-02-30",
    at: "yesterday",
    n: 10,
    tags: [],
    extra: true,
  });
  assert.deepEqual(errors.sort(), [
    "/at: is not a date-time",
    "/born: is not a date",
    "/extra: is not a documented member",
    "/id: is not a uuid",
    "/n: 10 breaks maximum 9",
    "/name: 4 breaks maxLength 3",
    "/tags: 0 breaks minItems 1",
    '/tier: "gold" is not one of free, sharp',
  ]);
  assert.deepEqual(schemaErrors(USER, { tier: "free" }), ["/id: is required"]);
  assert.deepEqual(schemaErrors(USER, [1]), ["/: is array, not object"]);
  assert.deepEqual(schemaErrors(USER, { id: ID, tier: "free", n: 1.5 }), [
    "/n: is number, not integer",
  ]);
  assert.deepEqual(schemaErrors(USER, { id: ID, tier: "free", tags: ["a", 2] }), [
    "/tags/1: is integer, not string",
  ]);
  assert.deepEqual(
    schemaErrors({ type: "object", additionalProperties: { type: "number" } }, { a: 1, b: "x" }),
    ["/b: is string, not number"],
  );
});
