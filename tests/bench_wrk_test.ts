import assert from "node:assert/strict";
import { medianByRatio, type PairedResult, parseWrk } from "../bench/wrk.ts";

const round = (rps: number, bareRps: number): PairedResult => ({
  rps,
  p50Ms: 1,
  p99Ms: 2,
  non2xx: 0,
  bareRps,
  ratio: rps / bareRps,
});

Deno.test("medianByRatio() keeps the round whose ratio is the median, not whose req/s is", () => {
  // The machine slowed down in the second round: fewer req/s on both sides.
  const rounds = [round(20_000, 100_000), round(15_000, 60_000), round(22_000, 100_000)];
  assert.deepEqual(medianByRatio(rounds), rounds[2]);
  assert.deepEqual(medianByRatio([rounds[0]]), rounds[0]);
});

Deno.test("parseWrk() reads req/s, p50, p99 and non-2xx answers", () => {
  const out = `Running 5s test @ http://127.0.0.1:8000/
  Latency Distribution
     50%  512.00us
     75%    1.20ms
     90%    2.00ms
     99%    1.50s
  104462 requests in 5.00s, 40.00MB read
  Non-2xx or 3xx responses: 104000
Requests/sec:  20872.10
`;
  assert.deepEqual(parseWrk(out), { rps: 20872.1, p50Ms: 0.512, p99Ms: 1500, non2xx: 104000 });
});
