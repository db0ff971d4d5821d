/**
 * A line typed at a prompt that does not echo (a password), from the raw bytes a terminal
 * sends: UTF-8 text; Backspace or DEL erases the last character (all its bytes); Ctrl-U
 * erases the line; Enter ends it; Ctrl-C, or Ctrl-D on an empty line, gives up. Escape
 * sequences (arrow keys) and other control characters are ignored, not stored.
 */

/** What the bytes so far amount to. */
export type Typed = { kind: "line"; text: string } | { kind: "interrupted" } | { kind: "more" };

const ESC = 0x1b;

/** A fresh line: feed it each chunk read from the terminal until it is not "more". */
export function createHiddenLine(): (chunk: Uint8Array) => Typed {
  let bytes: number[] = [];
  let escape: "none" | "started" | "csi" = "none";
  const eraseLastCharacter = () => {
    while (bytes.length && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
    bytes.pop();
  };
  return (chunk) => {
    for (const b of chunk) {
      if (escape === "started") {
        escape = b === 0x5b ? "csi" : "none"; // ESC [ … starts a control sequence
        continue;
      }
      if (escape === "csi") {
        if (b >= 0x40 && b <= 0x7e) escape = "none"; // its final byte
        continue;
      }
      if (b === 13 || b === 10) {
        return { kind: "line", text: new TextDecoder().decode(new Uint8Array(bytes)) };
      }
      if (b === 3 || (b === 4 && bytes.length === 0)) return { kind: "interrupted" };
      if (b === 0x7f || b === 8) eraseLastCharacter();
      else if (b === 0x15) bytes = [];
      else if (b === ESC) escape = "started";
      else if (b >= 0x20) bytes.push(b);
    }
    return { kind: "more" };
  };
}
