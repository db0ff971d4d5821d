/**
 * `deno task bench`: a bare Deno.serve baseline and proplab's real routes, measured with wrk
 * on loopback in the same run (50 connections, median of 3 runs), printed as req/s, p50/p99
 * and the ratio to the baseline.
 */
import { medianWrk, type WrkOptions, type WrkResult } from "./wrk.ts";
import { freePort } from "../tests/support/process.ts";

interface Row {
  name: string;
  result: WrkResult;
}

async function waitUp(url: string, child: Deno.ChildProcess, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill("SIGKILL");
  throw new Error(`${url} did not come up`);
}

async function measure(
  name: string,
  args: string[],
  env: Record<string, string>,
  path: string,
  opts: WrkOptions,
): Promise<Row> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args, ...(args.includes("bench/bare.ts") ? [String(port)] : [])],
    env: { ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "error" },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitUp(base + (args.includes("bench/bare.ts") ? "/" : "/healthz"), child);
    return { name, result: await medianWrk(base + path, opts) };
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

function printTable(rows: Row[]) {
  const base = rows[0].result.rps;
  console.log("| scenario | req/s | p50 ms | p99 ms | non-2xx | vs bare |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const { name, result: r } of rows) {
    const pct = ((r.rps / base) * 100).toFixed(0);
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50Ms.toFixed(2)} | ${
        r.p99Ms.toFixed(2)
      } | ${r.non2xx} | ${pct}% |`,
    );
  }
}

if (import.meta.main) {
  const rows: Row[] = [];
  rows.push(
    await measure("bare Deno.serve, small JSON", ["run", "-A", "bench/bare.ts"], {}, "/", {}),
  );
  const dataDir = await Deno.makeTempDir({ prefix: "proplab-bench-" });
  rows.push(
    await measure(
      "proplab GET /healthz (no database)",
      ["run", "-A", "main.ts", "serve"],
      { DATA_DIR: dataDir, WORKER: "off" },
      "/healthz",
      {},
    ),
  );
  await Deno.remove(dataDir, { recursive: true });
  printTable(rows);
}
