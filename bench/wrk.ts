/** Runs wrk against a URL and parses requests/s and latency percentiles. */

/** One wrk measurement. */
export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

/** Options of one wrk run. */
export interface WrkOptions {
  connections?: number;
  seconds?: number;
  headers?: Record<string, string>;
  /** Path of a Lua script (e.g. to rotate credentials per request). */
  script?: string;
}

function toMs(value: string): number {
  const m = value.match(/^([\d.]+)(us|ms|s)$/);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

/** Parses wrk's `--latency` output. */
export function parseWrk(out: string): WrkResult {
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN);
  const p50 = out.match(/^\s+50%\s+(\S+)/m)?.[1] ?? "";
  const p99 = out.match(/^\s+99%\s+(\S+)/m)?.[1] ?? "";
  const non2xx = Number(out.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  return { rps, p50Ms: toMs(p50), p99Ms: toMs(p99), non2xx };
}

/** Runs wrk once. */
export async function runWrk(url: string, opts: WrkOptions = {}): Promise<WrkResult> {
  const args = ["-t2", `-c${opts.connections ?? 50}`, `-d${opts.seconds ?? 5}s`, "--latency"];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push("-H", `${k}: ${v}`);
  if (opts.script) args.push("-s", opts.script);
  args.push(url);
  const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  return parseWrk(text);
}

/** Runs wrk `runs` times after an uncounted warm-up and keeps the run with the median req/s. */
export async function medianWrk(url: string, opts: WrkOptions, runs = 3): Promise<WrkResult> {
  // A 2 s run first, not counted: JIT compilation, prepared statements, first leases.
  await runWrk(url, { ...opts, seconds: 2 });
  const results: WrkResult[] = [];
  for (let i = 0; i < runs; i++) results.push(await runWrk(url, opts));
  results.sort((a, b) => a.rps - b.rps);
  return results[Math.floor(results.length / 2)];
}

/** A scenario's round next to a bare round run just after it: the ratio of the two. */
export interface PairedResult extends WrkResult {
  /** The bare baseline's req/s in the paired round. */
  bareRps: number;
  /** rps / bareRps. */
  ratio: number;
}

/** The round with the median ratio (runs: an odd count). */
export function medianByRatio(rounds: readonly PairedResult[]): PairedResult {
  const sorted = [...rounds].sort((a, b) => a.ratio - b.ratio);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Uncounted seconds of a scenario before each of its paired rounds. */
export const ROUND_WARMUP_SECONDS = 2;

/**
 * Like `medianWrk`, but each of the `runs` rounds measures `url` and then `bareUrl` back to
 * back, so a machine that is slower for a while (other tenants, thermal limits) slows both
 * sides of a ratio alike. Keeps the round with the median ratio. Each round starts with
 * `url` again, uncounted: the server sizes its rate-limit leases from the last second's
 * requests, and they lapse while it idles, so the first second after a pause measures that
 * ramp (with 1,000 users, ~14,000 against ~24,000 req/s over the first 2 s), not the rate.
 */
export async function pairedWrk(
  url: string,
  bareUrl: string,
  opts: WrkOptions,
  runs = 3,
): Promise<PairedResult> {
  const rounds: PairedResult[] = [];
  for (let i = 0; i < runs; i++) {
    await runWrk(url, { ...opts, seconds: ROUND_WARMUP_SECONDS });
    const r = await runWrk(url, opts);
    const bare = await runWrk(bareUrl, { seconds: opts.seconds });
    rounds.push({ ...r, bareRps: bare.rps, ratio: r.rps / bare.rps });
  }
  return medianByRatio(rounds);
}
