/**
 * Values in PostgreSQL's text format, both ways, for db/wire.ts: parameters as the server
 * parses them, columns decoded into the values postgres.js gives for the same types, and
 * UTF-8 with short ASCII handled in JavaScript (the gate's fields are mostly short).
 */

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

// Up to these lengths, ASCII is read and written faster in JavaScript than by a call into the
// runtime (TextDecoder ~110 ns, encodeInto ~90 ns whatever the length; measured in Deno 2.9).
const SHORT_READ = 12;
const SHORT_WRITE = 32;

/** Writes `s` as UTF-8 at `out[at]` (room for 3 bytes a character); answers the end. */
export function put(out: Uint8Array, at: number, s: string): number {
  if (s.length <= SHORT_WRITE) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[at + i] = c;
    }
    if (i === s.length) return at + i;
  }
  return at + encoder.encodeInto(s, out.subarray(at)).written;
}

/** `bytes[from, to)` as UTF-8 text; short ASCII (flags, tiers, numbers) read in JavaScript. */
export function utf8(bytes: Uint8Array, from: number, to: number): string {
  if (to - from <= SHORT_READ) {
    let s = "";
    for (let i = from; i < to; i++) {
      const c = bytes[i];
      if (c >= 0x80) return decoder.decode(bytes.subarray(from, to));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoder.decode(bytes.subarray(from, to));
}

/** A parameter as PostgreSQL's text format: arrays as array literals, null as null. */
export function encodeParam(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return `{${v.map(arrayElement).join(",")}}`;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "boolean") return v ? "t" : "f";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

const NEEDS_ESCAPE = /["\\]/;

function arrayElement(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return encodeParam(v)!;
  const s = encodeParam(v);
  if (s === null) return "NULL";
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** Parses a one-dimensional array literal's elements (null for NULL), before typing them. */
export function parseArrayText(text: string): (string | null)[] {
  const out: (string | null)[] = [];
  if (text === "{}") return out;
  let i = 1;
  while (i < text.length) {
    if (text[i] === '"') {
      let s = "";
      i++;
      while (text[i] !== '"') {
        if (text[i] === "\\") i++;
        s += text[i++];
      }
      out.push(s);
      i++;
    } else {
      let j = i;
      while (text[j] !== "," && text[j] !== "}") j++;
      const s = text.slice(i, j);
      out.push(s === "NULL" ? null : s);
      i = j;
    }
    i++; // the comma or the closing brace
  }
  return out;
}

/**
 * A one-dimensional int2/int4 array literal's elements, read without a string per element:
 * PostgreSQL writes them unquoted, NULL for null.
 */
export function parseIntArrayText(text: string): (number | null)[] {
  const out: (number | null)[] = [];
  let n = 0;
  let negative = false;
  let digits = false;
  // An array whose lower bound is not 1 comes decorated: "[0:1]={7,8}".
  const open = text.indexOf("{");
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      n = n * 10 + c - 48;
      digits = true;
    } else if (c === 45) negative = true;
    else if (c === 44 || c === 125) { // "," or "}"
      if (digits) out.push(negative ? -n : n);
      else if (i > open + 1) out.push(null); // NULL (not the "}" of "{}")
      n = 0;
      negative = false;
      digits = false;
    }
  }
  return out;
}

export type Decode = (text: string) => unknown;
const asNumber: Decode = Number;
const asText: Decode = (t) => t;
const SCALARS: Record<number, Decode> = {
  16: (t) => t === "t", // bool
  21: asNumber, // int2
  23: asNumber, // int4
  26: asNumber, // oid
  700: asNumber, // float4
  701: asNumber, // float8
  114: JSON.parse, // json
  3802: JSON.parse, // jsonb
};
// Array types by their element type; element types not named decode as text, like int8
// and numeric, which postgres.js also answers as strings.
const ARRAYS: Record<number, number> = {
  1000: 16,
  1005: 21,
  1007: 23,
  1021: 700,
  1022: 701,
  1009: 25,
  1015: 1043,
  1016: 20,
  2951: 2950,
  199: 114,
  3807: 3802,
};

/** The decoder of a column's type: the values postgres.js gives for the same type. */
export function decoderFor(oid: number): Decode {
  const scalar = SCALARS[oid];
  if (scalar) return scalar;
  const element = ARRAYS[oid];
  if (element === undefined) return asText;
  if (element === 21 || element === 23) return parseIntArrayText;
  const each = SCALARS[element] ?? asText;
  return (t) => parseArrayText(t).map((e) => e === null ? null : each(e));
}
