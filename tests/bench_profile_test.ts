import assert from "node:assert/strict";
import {
  type CpuProfile,
  formatProfileSummary,
  frameGroup,
  type ProfileNode,
  summarizeProfile,
} from "../bench/profile.ts";

const ROOT = "file:///repo/";
const PG = "file:///repo/node_modules/.deno/postgres@3.4.9/node_modules/postgres/src/";

const node = (
  id: number,
  functionName: string,
  url: string,
  lineNumber: number,
  children?: number[],
) => ({ id, callFrame: { functionName, url, lineNumber }, children }) satisfies ProfileNode;

// (root) ─ (idle)
//        ─ serve 00_serve.ts ─ handle data.ts:10 ─ query connection.js:100 ─ writeBuffer (native)
//        │                   │                  ─ (anonymous) data.ts:20
//        │                   ─ Response 23_response.js:1
//        ─ (program)
//        ─ (garbage collector)
const NODES = [
  node(1, "(root)", "", -1, [2, 3, 9, 10]),
  node(2, "(idle)", "", -1),
  node(3, "serve", "ext:deno_http/00_serve.ts", 0, [4, 8]),
  node(4, "handle", "file:///repo/routes/data.ts", 9, [5, 7]),
  node(5, "query", PG + "connection.js", 99, [6]),
  node(6, "writeBuffer", "", -1),
  node(7, "", "file:///repo/routes/data.ts", 19),
  node(8, "Response", "ext:deno_fetch/23_response.js", 0),
  node(9, "(program)", "", -1),
  node(10, "(garbage collector)", "", -1),
];

// Each sample stands for its delta: idle 5 ms, writeBuffer 3, query 1 + 1, the rest 1 each.
// 15 ms sampled, 10 ms not idle, so 1 ms is 10 %.
const PROFILE: CpuProfile = {
  nodes: NODES,
  samples: [2, 6, 5, 5, 7, 4, 8, 9, 10],
  timeDeltas: [5000, 3000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
};

Deno.test("summarizeProfile() weighs samples by their time delta and sets idle apart", () => {
  const s = summarizeProfile(PROFILE, { root: ROOT });
  assert.equal(s.sampledMs, 15);
  assert.equal(s.idleMs, 5);
});

Deno.test("summarizeProfile() ranks self time as a share of the non-idle time", () => {
  const s = summarizeProfile(PROFILE, { root: ROOT, top: 3 });
  assert.deepEqual(s.bySelf, [
    { label: "writeBuffer", ms: 3, pct: 30 },
    { label: "query connection.js:100", ms: 2, pct: 20 },
    // Ties are ordered by label.
    { label: "(anonymous) data.ts:20", ms: 1, pct: 10 },
  ]);
});

Deno.test("summarizeProfile() ranks inclusive time over every frame on the stack", () => {
  const s = summarizeProfile(PROFILE, { root: ROOT, top: 4 });
  assert.deepEqual(s.byTotal.map((f) => [f.label, f.pct]), [
    ["serve 00_serve.ts:1", 80], // 3 + 2 + 1 + 1 + 1
    ["handle data.ts:10", 70], // 3 + 2 + 1 + 1
    ["query connection.js:100", 50], // 3 + 2
    ["writeBuffer", 30],
  ]);
});

Deno.test("summarizeProfile() counts native frames for the group of their caller", () => {
  const s = summarizeProfile(PROFILE, { root: ROOT });
  // writeBuffer (3) goes to the driver that called it; serve has no self time.
  assert.deepEqual(s.groups, { postgres: 50, http: 10, proplab: 20, gc: 10, other: 10 });
});

Deno.test("frameGroup() counts the gate's own client (db/wire*.ts) as driver", () => {
  const frame = (url: string) => ({ functionName: "f", url, lineNumber: 0 });
  assert.equal(frameGroup(frame("file:///repo/db/wire.ts"), ROOT), "postgres");
  assert.equal(frameGroup(frame("file:///repo/db/wire_codec.ts"), ROOT), "postgres");
  assert.equal(frameGroup(frame("file:///repo/db/wire_values.ts"), ROOT), "postgres");
  assert.equal(frameGroup(frame("file:///repo/db/gate.ts"), ROOT), "proplab");
  assert.equal(frameGroup(frame("file:///elsewhere/db/wire.ts"), ROOT), null);
});

Deno.test("summarizeProfile() counts a recursive function once per sample", () => {
  const s = summarizeProfile({
    nodes: [
      node(1, "(root)", "", -1, [2]),
      node(2, "walk", "file:///repo/lib/tree.ts", 4, [3]),
      node(3, "walk", "file:///repo/lib/tree.ts", 4),
    ],
    samples: [3, 2],
    timeDeltas: [1000, 1000],
  }, { root: ROOT });
  assert.deepEqual(s.byTotal, [{ label: "walk tree.ts:5", ms: 2, pct: 100 }]);
  assert.equal(s.groups.proplab, 100);
});

Deno.test("summarizeProfile() does not count files under node_modules as proplab's", () => {
  const s = summarizeProfile({
    nodes: [
      node(1, "(root)", "", -1, [2]),
      node(2, "parse", "file:///repo/node_modules/.deno/x@1.0.0/node_modules/x/a.js", 0),
    ],
    samples: [2],
    timeDeltas: [1000],
  }, { root: ROOT });
  assert.equal(s.groups.other, 100);
});

Deno.test("formatProfileSummary() prints idle share, groups and both rankings", () => {
  const lines = formatProfileSummary(summarizeProfile(PROFILE, { root: ROOT, top: 1 }));
  assert.deepEqual(lines, [
    "idle 33% of the sampled time; shares below are of the 10 ms not idle",
    "by group: PostgreSQL driver 50%, Deno HTTP/Response 10%, proplab 20%, GC 10%, other 10%",
    "top by self time:",
    "   30.0%  writeBuffer",
    "top by inclusive time:",
    "   80.0%  serve 00_serve.ts:1",
  ]);
});
