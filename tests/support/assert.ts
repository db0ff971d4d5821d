/** Assertions shared by the HTTP tests. */
import assert from "node:assert/strict";

/** Asserts `res` is a problem+json answer with `status` and error slug `code`; returns the body. */
export async function assertProblem(
  res: Response,
  status: number,
  code: string,
): Promise<Record<string, unknown>> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = JSON.parse(text);
  const type = String(body.type);
  assert.ok(
    type.endsWith(`/${code}`) || type.endsWith(`#${code}`),
    `expected problem type ${code}, got ${type}`,
  );
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  assert.equal(body.requestId, res.headers.get("x-request-id"));
  assert.ok(!/\bat .*\.ts:\d+/.test(text), "problem body leaks a stack trace");
  return body;
}

/** Options for tests sharing one database across steps (timers of drivers outlive a step). */
export const DB_TEST = { sanitizeOps: false, sanitizeResources: false } as const;
