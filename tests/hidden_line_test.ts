import assert from "node:assert/strict";
import { createHiddenLine, type Typed } from "../lib/hidden_line.ts";

const enc = new TextEncoder();

/** Feeds `chunks` (strings as UTF-8, numbers as single bytes) and returns the last outcome. */
function typed(...chunks: (string | number)[]): Typed {
  const feed = createHiddenLine();
  let out: Typed = { kind: "more" };
  for (const c of chunks) {
    out = feed(typeof c === "number" ? new Uint8Array([c]) : enc.encode(c));
    if (out.kind !== "more") break;
  }
  return out;
}

Deno.test("a hidden line keeps UTF-8 whole, even split across reads", () => {
  assert.deepEqual(typed("pässwörd-ééé\r"), { kind: "line", text: "pässwörd-ééé" });
  const e = enc.encode("é"); // two bytes, read one at a time
  assert.deepEqual(typed("caf", e[0], e[1], "\n"), { kind: "line", text: "café" });
});

Deno.test("Backspace and DEL erase a character, however many bytes; Ctrl-U the line", () => {
  assert.deepEqual(typed("tty-passwordX", 0x7f, "-1\r"), { kind: "line", text: "tty-password-1" });
  assert.deepEqual(typed("abé", 8, "c\r"), { kind: "line", text: "abc" });
  assert.deepEqual(typed("🏀", 0x7f, 0x7f, "x\r"), { kind: "line", text: "x" });
  assert.deepEqual(typed("wrong", 0x15, "right\r"), { kind: "line", text: "right" });
});

Deno.test("Ctrl-C, or Ctrl-D on an empty line, gives up; arrows and controls are not kept", () => {
  assert.deepEqual(typed("secr", 3), { kind: "interrupted" });
  assert.deepEqual(typed(4), { kind: "interrupted" });
  assert.deepEqual(typed("a", 4, "b\r"), { kind: "line", text: "ab" });
  assert.deepEqual(typed("a\x1b[D\x1b[1;5Cb\tc\r"), { kind: "line", text: "abc" });
  assert.deepEqual(typed("abc"), { kind: "more" });
});
