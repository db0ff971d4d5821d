/** Runs `proplab serve` as a real child process on a free port, for process-level tests. */

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A proplab child process. */
export interface ServerProcess {
  base: string;
  child: Deno.ChildProcess;
  /** Everything the process wrote to stdout so far. */
  output(): string;
  /** Sends `signal` and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `main.ts serve` (or the script `args` name) with `env` and waits until /healthz
 * answers (up to `timeoutMs`).
 */
export async function spawnServer(
  env: Record<string, string>,
  timeoutMs = 30_000,
  args = ["run", "-A", "main.ts", "serve"],
): Promise<ServerProcess> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "info", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const dec = new TextDecoder();
  void child.stdout.pipeTo(
    new WritableStream({ write: (c) => void (out += dec.decode(c, { stream: true })) }),
  ).catch(() => {});
  void child.stderr.pipeTo(
    new WritableStream({ write: (c) => void (out += dec.decode(c, { stream: true })) }),
  ).catch(() => {});
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(base + "/healthz");
      await res.body?.cancel();
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`server did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base,
    child,
    output: () => out,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      return await child.status;
    },
  };
}
