/**
 * Small answers in one write. Deno 2.9 (hyper) writes an answer's head into a buffer of
 * 512 bytes, doubled as often as the head needs, and sends the body in the same write only
 * when it fits in the room the head left; otherwise the answer takes two sends, each ~5 µs
 * of the server's CPU on loopback (README, Performance: a 301-byte 429 after a 373-byte
 * head took two). Measured with strace on a bare `Deno.serve`: one send exactly when
 * head + body <= 512 (head <= 512) or <= 1024 (head 513..1024).
 *
 * So a small answer that would not fit after its head gets one more header, `x-pad`, that
 * takes its head past 512 bytes: the buffer is then 1 KiB and holds the body too. The
 * padding is dashes (a field value's spaces would be trimmed away); it says nothing and
 * costs the client a few hundred bytes.
 */

/** The head buffer's first size. */
const FIRST_BUFFER = 512;
/** Its size once the head outgrows the first. */
const SECOND_BUFFER = 1024;
/** The padding header's own bytes besides its value: `x-pad: ` and CRLF. */
const PAD_OVERHEAD = "x-pad: \r\n".length;
/**
 * How far the estimate of the head may be off: the status line's reason phrase is not known
 * here ("OK" to "Network Authentication Required"), so it is counted as REASON bytes.
 */
const SLACK = 16;
const REASON = 16;
// `date: Mon, 23 Nov 2026 09:28:59 GMT` and CRLF, which Deno adds to every answer.
const DATE_LINE = 37;

const DASHES = "-".repeat(SECOND_BUFFER);

/**
 * The head Deno will write for these headers and body, in bytes, within SLACK: the status
 * line, the headers, `content-length`, `date`, and the blank line. Header values are byte
 * strings, a byte a character.
 */
export function estimatedHeadBytes(
  headers: readonly [string, string][],
  bodyBytes: number,
): number {
  let n = "HTTP/1.1 200 \r\n".length + REASON + DATE_LINE + 2;
  n += "content-length: \r\n".length + String(bodyBytes).length;
  for (const [k, v] of headers) n += k.length + v.length + 4;
  return n;
}

/**
 * The `x-pad` header that makes an answer with `body` go out in one write, or null when it
 * does already or no padding can make it (a body of more than ~450 bytes, a head past 512
 * bytes already). `body` is JSON or text whose characters are one byte each, as ours are; a
 * longer UTF-8 body only makes the padding useless, never the answer wrong.
 */
export function headPadding(
  headers: readonly [string, string][],
  body: string | null,
): [string, string] | null {
  if (body === null || body.length === 0) return null;
  const head = estimatedHeadBytes(headers, body.length);
  if (head + SLACK + body.length <= FIRST_BUFFER) return null;
  if (head - SLACK > FIRST_BUFFER) return null;
  // The padded head must land in (FIRST_BUFFER, SECOND_BUFFER - body] however the estimate
  // errs: aim at the middle of what stays inside by SLACK either way.
  const low = FIRST_BUFFER + 1 + SLACK;
  const high = SECOND_BUFFER - body.length - SLACK;
  if (low > high) return null;
  const target = Math.floor((low + high) / 2);
  return ["x-pad", DASHES.slice(0, target - head - PAD_OVERHEAD)];
}
