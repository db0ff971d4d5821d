import assert from "node:assert/strict";
import {
  CEILING_1,
  CEILING_3,
  type Extra,
  formatCeilings,
  formatTable,
  formatTargets,
  type Row,
} from "../bench/report.ts";
import type { WrkResult } from "../bench/wrk.ts";

const alone = (rps: number, p99Ms = 5): WrkResult => ({ rps, p50Ms: 1, p99Ms, non2xx: 0 });
const paired = (rps: number, bareRps: number, p99Ms = 5) => ({
  ...alone(rps, p99Ms),
  bareRps,
  ratio: rps / bareRps,
});

const extra: Extra = {
  coldPgMs: 120,
  coldPgliteMs: 600,
  pgliteRssMb: 190,
  logins: { done: 40, busy: 0, failed: 0, hashers: 1 },
};

/** The rows of a run in which every scenario ran, each at `pct` % of bare. */
function rows(pct: Record<string, number>, p99: Record<string, number> = {}): Row[] {
  const at = (id: string) => paired(pct[id] * 1000, 100_000, p99[id]);
  return [
    { name: "bare Deno.serve, small JSON", result: alone(100_000) },
    { name: "1. API key, 1 hot user", result: at("1") },
    { name: "1b. API key, 1,000 users", result: at("1b") },
    { name: "2. access token (JWT), 1 hot user", result: at("2") },
    { name: "6. API key, 1,000 users + 20 logins/s", result: alone(9_000, p99["6"]) },
    { name: "3. 429-heavy (1 user, 10/min)", result: at("3") },
    { name: "4. PGlite embedded, API key, 1 hot user", result: at("4") },
  ];
}

const verdicts = (lines: string[]) => lines.map((l) => l.split("→ ")[1] ?? l);

Deno.test("formatTable(): a paired row's ratio is its own rounds', an unpaired row's is to bare", () => {
  const lines = formatTable([
    { name: "bare Deno.serve, small JSON", result: alone(80_000) },
    // Measured while bare ran faster alongside it: 20 % of that, not 25 % of the bare row.
    { name: "1. API key, 1 hot user", result: paired(20_000, 100_000) },
    { name: "6. API key, 1,000 users + 20 logins/s", result: alone(8_000) },
  ]);
  assert.equal(lines.length, 5);
  assert.match(lines[2], /^\| bare .* \| – \| 100% \|$/);
  assert.match(lines[3], /^\| 1\. .* \| 20000 \| 1\.00 \| 5\.00 \| 0 \| 100000 \| 20% \|$/);
  assert.match(lines[4], /\| – \| 10% \|$/);
});

Deno.test("formatTable(): without a bare row an unpaired ratio is shown as unknown", () => {
  const [, , line] = formatTable([{ name: "6. logins", result: alone(8_000) }]);
  assert.match(line, /\| – \| – \|$/);
});

Deno.test("formatTargets(): each target's verdict from its thresholds", () => {
  const pass = { "1": 30, "1b": 31, "2": 30, "3": 40, "4": 10 };
  assert.deepEqual(verdicts(formatTargets(rows(pass, { "1": 10, "1b": 10, "6": 20 }), extra)), [
    "met",
    "met",
    "met",
    "met",
    "met (embedded PGlite: 600 ms)",
    "met",
  ]);
  const short = { "1": 29, "1b": 40, "2": 29, "3": 39, "4": 9 };
  assert.deepEqual(
    verdicts(formatTargets(rows(short, { "6": 21 }), { ...extra, coldPgMs: 301 })),
    ["MISSED", "MISSED", "MISSED", "MISSED", "MISSED (embedded PGlite: 600 ms)", "MISSED"],
  );
});

Deno.test("formatTargets(): target 1 needs both scenarios and both p99s", () => {
  const target1 = (pct: Record<string, number>, p99: Record<string, number>) =>
    verdicts(formatTargets(rows({ "2": 30, "3": 40, "4": 10, ...pct }, p99), extra))[0];
  assert.equal(target1({ "1": 35, "1b": 29 }, {}), "MISSED");
  assert.equal(target1({ "1": 35, "1b": 35 }, { "1b": 10.5 }), "MISSED");
  assert.equal(target1({ "1": 35, "1b": 35 }, { "1": 9 }), "met");
});

Deno.test("formatTargets(): the RSS limit, shed logins and scenarios that did not run", () => {
  const all = { "1": 30, "1b": 30, "2": 30, "3": 40, "4": 20 };
  const heavy = formatTargets(rows(all), { ...extra, pgliteRssMb: 301 });
  assert.match(heavy[3], /20%, RSS 301 MB → MISSED$/);
  const logins = { done: 40, busy: 160, failed: 0, hashers: 1 };
  const shed = formatTargets(rows(all), { ...extra, logins });
  assert.match(
    shed[5],
    /40 logins hashed and ok, 160 refused 503 busy.*met for the 4\.0 logins\/s/,
  );
  // 4 a second on one thread: 20 a second would need 5 such.
  assert.match(shed[5], /1 hashing thread\(s\) here, 20\/s needs about 5 cores\)$/);
  const two = formatTargets(rows(all), { ...extra, logins: { ...logins, hashers: 2 } });
  assert.match(two[5], /2 hashing thread\(s\) here, 20\/s needs about 10 cores\)$/);
  const onlyBare = formatTargets(rows(all).slice(0, 1), { ...extra, coldPgMs: NaN });
  assert.deepEqual(verdicts(onlyBare).map((v) => v.endsWith("not run")), [
    true,
    true,
    true,
    true,
    true,
    true,
  ]);
});

Deno.test("formatCeilings(): each ceiling's ratio and the share of it its scenario reached", () => {
  const run = rows({ "1": 27, "1b": 17, "2": 34, "3": 25, "4": 14 });
  assert.deepEqual(formatCeilings(run), [], "no ceiling rows, no lines");
  run.push({ name: CEILING_1, result: paired(54_000, 100_000) });
  run.push({ name: CEILING_3, result: paired(50_000, 100_000) });
  assert.deepEqual(formatCeilings(run), [
    "Ceiling of 1: a bare Deno.serve giving the same answer runs at 54% of bare; scenario 1 reaches 50% of that",
    "Ceiling of 3: a bare Deno.serve giving the same answer runs at 50% of bare; scenario 3 reaches 50% of that",
  ]);
  const lone = [{ name: CEILING_3, result: paired(50_000, 100_000) }];
  assert.deepEqual(formatCeilings(lone), [
    "Ceiling of 3: a bare Deno.serve giving the same answer runs at 50% of bare",
  ]);
});
