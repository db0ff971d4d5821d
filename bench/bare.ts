/** The baseline: a bare Deno.serve answering a small JSON document. */
const port = Number(Deno.args[0] ?? 8100);
const body = JSON.stringify({ status: "ok", items: [1, 2, 3] });
Deno.serve(
  { port, hostname: "127.0.0.1", onListen: () => console.log("ready") },
  () => new Response(body, { headers: { "content-type": "application/json" } }),
);
