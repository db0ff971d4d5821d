/**
 * The bench's report: the table of scenarios with their ratios to bare, and the six
 * targets met or missed. Pure: it formats what run.ts measured.
 */
import type { PairedResult, WrkResult } from "./wrk.ts";

/**
 * Rows of a bare Deno.serve giving scenario 1's and scenario 3's own answer (bench/bare.ts
 * with a captured answer): what Deno alone costs for that answer, the most those scenarios
 * could reach.
 */
export const CEILING_1 = "c1. bare Deno.serve giving 1's answer";
export const CEILING_3 = "c3. bare Deno.serve giving 3's answer";

/** A scenario's id: its name up to the first "." or space ("1b. API key…" → "1b"). */
export const scenarioId = (name: string) => name.split(/[. ]/)[0];

/** A result measured in paired rounds with bare (its ratio comes from them). */
export const isPaired = (r: WrkResult | PairedResult): r is PairedResult => "ratio" in r;

/** A row's ratio to bare: from its paired rounds, else to the table's bare row. */
function ratioOf(r: WrkResult | PairedResult, bare: WrkResult | undefined): number {
  return isPaired(r) ? r.ratio : bare ? r.rps / bare.rps : NaN;
}

/** One scenario's line of the table. */
export interface Row {
  name: string;
  result: WrkResult | PairedResult;
}

/** What the targets need besides the table. */
export interface Extra {
  coldPgMs: number;
  coldPgliteMs: number;
  pgliteRssMb: number;
  /** Scenario 6's logins, and how many password derivations the server runs at once. */
  logins: { done: number; busy: number; failed: number; hashers: number };
}

/** The table's lines (markdown). */
export function formatTable(rows: Row[]): string[] {
  const bare = rows.find((r) => scenarioId(r.name) === "bare")?.result;
  const out = [
    "| scenario | req/s | p50 ms | p99 ms | non-2xx | bare alongside | vs bare |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const { name, result: r } of rows) {
    const ratio = ratioOf(r, bare);
    const pct = Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : "–";
    const alongside = isPaired(r) ? String(Math.round(r.bareRps)) : "–";
    out.push(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50Ms.toFixed(2)} | ${
        r.p99Ms.toFixed(2)
      } | ${r.non2xx} | ${alongside} | ${pct} |`,
    );
  }
  return out;
}

/** The six targets, a line each; one whose scenarios were left out says "not run". */
export function formatTargets(rows: Row[], x: Extra): string[] {
  const found = (id: string) => rows.find((r) => scenarioId(r.name) === id)?.result;
  const ran = (...ids: string[]) => ids.every((id) => found(id));
  const get = (id: string) => found(id)!;
  const pct = (r: WrkResult | PairedResult) => ratioOf(r, get("bare")) * 100;
  const mark = (ok: boolean) => ok ? "met" : "MISSED";
  const ms = (v: number) => Number.isFinite(v) ? `${v.toFixed(0)} ms` : "not run";
  const targets: [string, boolean, () => string][] = [
    ["1. API key >= 30% of bare, p99 <= 10 ms", ran("bare", "1", "1b"), () => {
      const hot = get("1"), many = get("1b");
      return `hot ${pct(hot).toFixed(0)}% p99 ${hot.p99Ms.toFixed(1)} ms; 1,000 users ${
        pct(many).toFixed(0)
      }% p99 ${many.p99Ms.toFixed(1)} ms → ${
        mark(pct(hot) >= 30 && pct(many) >= 30 && hot.p99Ms <= 10 && many.p99Ms <= 10)
      }`;
    }],
    ["2. access token >= 30%", ran("bare", "2"), () => {
      const jwt = get("2");
      return `${pct(jwt).toFixed(0)}% → ${mark(pct(jwt) >= 30)}`;
    }],
    ["3. 429-heavy >= 40%", ran("bare", "3"), () => {
      const refuse = get("3");
      return `${pct(refuse).toFixed(0)}% → ${mark(pct(refuse) >= 40)}`;
    }],
    ["4. PGlite >= 10%, RSS <= 300 MB", ran("bare", "4"), () => {
      const lite = get("4");
      return `${pct(lite).toFixed(0)}%, RSS ${x.pgliteRssMb.toFixed(0)} MB → ${
        mark(pct(lite) >= 10 && x.pgliteRssMb <= 300)
      }`;
    }],
    [
      "5. cold start <= 300 ms on PostgreSQL",
      Number.isFinite(x.coldPgMs),
      () =>
        `${ms(x.coldPgMs)} → ${mark(x.coldPgMs <= 300)} (embedded PGlite: ${ms(x.coldPgliteMs)})`,
    ],
    ["6. data p99 <= 20 ms under 20 logins/s", ran("6"), () => {
      const mixed = get("6");
      const { done, busy, failed, hashers } = x.logins;
      const seconds = (done + busy + failed) / 20;
      // Each of the server's hashing threads managed done / seconds / hashers a second.
      const cores = Math.ceil((20 * seconds * hashers) / Math.max(done, 1));
      const verdict = mixed.p99Ms > 20
        ? mark(false)
        : busy > 0
        ? `met for the ${(done / seconds).toFixed(1)} logins/s hashed; the rest were shed ` +
          `(at the rate of the ${hashers} hashing thread(s) here, 20/s needs about ${cores} cores)`
        : mark(true);
      return `${mixed.p99Ms.toFixed(1)} ms (${done} logins hashed and ok, ${busy} refused ` +
        `503 busy, ${failed} failed) → ${verdict}`;
    }],
  ];
  return targets.map(([label, run, measured]) => `${label}: ${run ? measured() : "not run"}`);
}

/**
 * For each ceiling row measured: its ratio, and the share of it its scenario reached. Ceiling
 * rows are paired, so their ratio does not need the bare row.
 */
export function formatCeilings(rows: Row[]): string[] {
  const bare = rows.find((r) => scenarioId(r.name) === "bare")?.result;
  const out: string[] = [];
  for (const ceiling of rows.filter((r) => /^c\d/.test(scenarioId(r.name)))) {
    const id = scenarioId(ceiling.name).slice(1);
    const scenario = rows.find((r) => scenarioId(r.name) === id);
    const top = ratioOf(ceiling.result, bare);
    const reached = scenario ? ratioOf(scenario.result, bare) / top : NaN;
    out.push(
      `Ceiling of ${id}: a bare Deno.serve giving the same answer runs at ${
        (top * 100).toFixed(0)
      }% of bare` +
        (Number.isFinite(reached)
          ? `; scenario ${id} reaches ${(reached * 100).toFixed(0)}% of that`
          : ""),
    );
  }
  return out;
}
