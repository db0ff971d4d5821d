/**
 * The baseline: a bare Deno.serve answering a small JSON document. With an answer file
 * (`bare.ts <port> <answer.json>`: status, headers, body, as `captureAnswer` in run.ts writes
 * it) it gives that answer instead, with a fresh X-Request-Id each time as proplab does: what
 * serving exactly proplab's answer costs Deno, with none of proplab's work.
 */
interface Answer {
  status: number;
  headers: [string, string][];
  body: string;
}

const port = Number(Deno.args[0] ?? 8100);
const file = Deno.args[1];
const small = JSON.stringify({ status: "ok", items: [1, 2, 3] });
const answer: Answer | null = file ? JSON.parse(Deno.readTextFileSync(file)) : null;

function replay({ status, headers, body }: Answer): () => Response {
  const fixed = headers.filter(([k]) => k !== "x-request-id");
  const withId = fixed.length < headers.length;
  return () => {
    const all = withId ? [...fixed, ["x-request-id", crypto.randomUUID()]] : fixed;
    return new Response(body, { status, headers: all as [string, string][] });
  };
}

Deno.serve(
  { port, hostname: "127.0.0.1", onListen: () => console.log("ready") },
  answer
    ? replay(answer)
    : () => new Response(small, { headers: { "content-type": "application/json" } }),
);
