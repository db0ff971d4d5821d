/**
 * The subset of JSON Schema (2020-12) that openapi.json uses, as a checker: each answer a
 * test server gives is checked against its route's documented schema (tests/support).
 * Keywords: type (one or a list), enum, properties, required, additionalProperties (a
 * schema or false), items, minItems, maxItems, minLength, maxLength, minimum, maximum,
 * minProperties, format (date, date-time, uuid). Others (description, default) are notes.
 */
import { isIsoDate, isUuid } from "./dates.ts";
import { isRfc3339 } from "./fields.ts";

type Schema = Record<string, unknown>;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

const FORMATS: Record<string, (s: string) => boolean> = {
  "date": isIsoDate,
  "date-time": isRfc3339,
  "uuid": isUuid,
};

function typeErrors(s: Schema, v: unknown, at: string): string[] {
  if (s.type === undefined) return [];
  const allowed = Array.isArray(s.type) ? s.type : [s.type];
  const t = typeOf(v);
  const ok = allowed.includes(t) || (t === "integer" && allowed.includes("number"));
  return ok ? [] : [`${at || "/"}: is ${t}, not ${allowed.join(" or ")}`];
}

function objectErrors(s: Schema, o: Record<string, unknown>, at: string): string[] {
  const out: string[] = [];
  const props = (s.properties ?? {}) as Record<string, Schema>;
  for (const name of (s.required ?? []) as string[]) {
    if (!(name in o)) out.push(`${at}/${name}: is required`);
  }
  if (typeof s.minProperties === "number" && Object.keys(o).length < s.minProperties) {
    out.push(`${at || "/"}: has fewer than ${s.minProperties} members`);
  }
  for (const [name, value] of Object.entries(o)) {
    const sub: unknown = props[name] ?? s.additionalProperties;
    if (sub === false) out.push(`${at}/${name}: is not a documented member`);
    else if (sub && typeof sub === "object") {
      out.push(...schemaErrors(sub as Schema, value, `${at}/${name}`));
    }
  }
  return out;
}

function boundErrors(s: Schema, v: unknown, at: string): string[] {
  const out: string[] = [];
  const where = at || "/";
  const check = (key: string, size: number, bad: (limit: number) => boolean) => {
    const limit = s[key];
    if (typeof limit === "number" && bad(limit)) {
      out.push(`${where}: ${size} breaks ${key} ${limit}`);
    }
  };
  if (typeof v === "string") {
    check("minLength", v.length, (n) => v.length < n);
    check("maxLength", v.length, (n) => v.length > n);
    const format = FORMATS[s.format as string];
    if (format && !format(v)) out.push(`${where}: is not a ${s.format}`);
  }
  if (typeof v === "number") {
    check("minimum", v, (n) => v < n);
    check("maximum", v, (n) => v > n);
  }
  if (Array.isArray(v)) {
    check("minItems", v.length, (n) => v.length < n);
    check("maxItems", v.length, (n) => v.length > n);
  }
  return out;
}

/** Where `value` breaks `schema`, one line per problem (`/path: what`); empty when it fits. */
export function schemaErrors(schema: Schema, value: unknown, at = ""): string[] {
  const typed = typeErrors(schema, value, at);
  if (typed.length) return typed;
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    return [`${at || "/"}: ${JSON.stringify(value)} is not one of ${schema.enum.join(", ")}`];
  }
  const out = boundErrors(schema, value, at);
  if (typeOf(value) === "object") {
    out.push(...objectErrors(schema, value as Record<string, unknown>, at));
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) =>
      out.push(...schemaErrors(schema.items as Schema, item, `${at}/${i}`))
    );
  }
  return out;
}
