/** `deno task bench`: load scenarios against a bare Deno.serve baseline (issue: performance). */
console.log("no scenarios yet");
