/**
 * Reads a V8 CPU profile (the `.cpuprofile` JSON that `deno run --cpu-prof` writes) and says
 * where the time went: how much was idle, the top functions by self and inclusive time, and
 * the share of the PostgreSQL driver (postgres.js and db/wire*.ts), Deno's HTTP/Response
 * internals, proplab, GC and the rest.
 */

/** The parts of a `.cpuprofile` the summary reads (times in microseconds). */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** Microseconds from the previous sample (the first: from `startTime`). */
  timeDeltas: number[];
}

/** One call-tree node; the same function appears once per distinct call path. */
export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Where a sample's time is counted. */
export type Group = "postgres" | "http" | "proplab" | "gc" | "other";

/** The groups in the order they are printed, with their names for a reader. */
export const GROUP_NAMES = {
  postgres: "PostgreSQL driver",
  http: "Deno HTTP/Response",
  proplab: "proplab",
  gc: "GC",
  other: "other",
} as const satisfies Record<Group, string>;

/** A function's time, and its share of the non-idle time in percent. */
export interface FunctionTime {
  label: string;
  ms: number;
  pct: number;
}

/** What `summarizeProfile()` finds. */
export interface ProfileSummary {
  sampledMs: number;
  idleMs: number;
  /** Top functions by self time (the sample's innermost frame). */
  bySelf: FunctionTime[];
  /** Top functions by inclusive time (on the stack at all; recursion counted once). */
  byTotal: FunctionTime[];
  /** Percent of the non-idle time per group. */
  groups: Record<Group, number>;
}

const POSTGRES = /\/node_modules\/\.deno\/postgres@[^/]+\//;
// proplab's own client for the request gate's statements counts as driver too.
const OWN_DRIVER = /^db\/wire(_codec|_values)?\.ts$/;
const HTTP_FILES = /^(00_serve|20_headers|23_request|23_response)\.[jt]s$/;

const fileOf = (url: string) => url.slice(url.lastIndexOf("/") + 1);

/** `functionName file:line` (line 1-based); native frames and `(program)` keep their name. */
export function frameLabel(frame: ProfileNode["callFrame"]): string {
  const name = frame.functionName || "(anonymous)";
  return frame.url ? `${name} ${fileOf(frame.url)}:${frame.lineNumber + 1}` : name;
}

/** The group a frame belongs to, or null for frames counted with their caller (native, runtime). */
export function frameGroup(frame: ProfileNode["callFrame"], root: string): Group | null {
  const { url, functionName } = frame;
  if (functionName === "(garbage collector)") return "gc";
  if (POSTGRES.test(url) || (url.startsWith(root) && OWN_DRIVER.test(url.slice(root.length)))) {
    return "postgres";
  }
  if (url.startsWith("ext:deno_http/") || HTTP_FILES.test(fileOf(url))) return "http";
  if (url.startsWith(root) && !url.startsWith(root + "node_modules/")) return "proplab";
  return null;
}

/** Node id → the node's stack, innermost frame first, without `(root)`. */
function stacks(nodes: ProfileNode[]): Map<number, ProfileNode[]> {
  const parent = new Map<number, ProfileNode>();
  for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n);
  const out = new Map<number, ProfileNode[]>();
  for (const n of nodes) {
    const stack: ProfileNode[] = [];
    for (let at: ProfileNode | undefined = n; at && parent.has(at.id); at = parent.get(at.id)) {
      stack.push(at);
    }
    out.set(n.id, stack);
  }
  return out;
}

function top(times: Map<string, number>, busyMs: number, n: number): FunctionTime[] {
  return [...times]
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .slice(0, n)
    .map(([label, ms]) => ({ label, ms, pct: busyMs ? (ms / busyMs) * 100 : 0 }));
}

/**
 * Summarises `profile`. Each sample stands for the time since the one before it. A sample's
 * time goes to the group of its innermost frame that has one, so native and runtime frames
 * (`writeBuffer`, `JSON.stringify`, node:net) count for the code that called them.
 * `root` is the repository's file URL with a trailing slash: files under it are proplab's.
 * An async function resumed after an `await` is sampled without its callers, so inclusive
 * time understates handlers; the group shares do not depend on callers that far up.
 */
export function summarizeProfile(
  profile: CpuProfile,
  opts: { root: string; top?: number },
): ProfileSummary {
  const byNode = stacks(profile.nodes);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const groups: Record<Group, number> = { postgres: 0, http: 0, proplab: 0, gc: 0, other: 0 };
  let sampledMs = 0, idleMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = Math.max(0, profile.timeDeltas[i] ?? 0) / 1000;
    const stack = byNode.get(id) ?? [];
    sampledMs += ms;
    if (!stack.length || stack[0].callFrame.functionName === "(idle)") {
      idleMs += ms;
      return;
    }
    const labels = stack.map((n) => frameLabel(n.callFrame));
    self.set(labels[0], (self.get(labels[0]) ?? 0) + ms);
    for (const label of new Set(labels)) total.set(label, (total.get(label) ?? 0) + ms);
    const group = stack.map((n) => frameGroup(n.callFrame, opts.root)).find((g) => g) ?? "other";
    groups[group] += ms;
  });
  const busyMs = sampledMs - idleMs;
  const n = opts.top ?? 10;
  for (const g of Object.keys(groups) as Group[]) groups[g] = busyMs ? groups[g] / busyMs * 100 : 0;
  return {
    sampledMs,
    idleMs,
    bySelf: top(self, busyMs, n),
    byTotal: top(total, busyMs, n),
    groups,
  };
}

/** The summary as indented lines for the bench's report (the caller prints the heading). */
export function formatProfileSummary(s: ProfileSummary): string[] {
  const pct = (p: number) => `${p.toFixed(1)}%`.padStart(6);
  const busy = s.sampledMs - s.idleMs;
  const idle = s.sampledMs ? (s.idleMs / s.sampledMs) * 100 : 0;
  const groups = (Object.keys(GROUP_NAMES) as Group[])
    .map((g) => `${GROUP_NAMES[g]} ${s.groups[g].toFixed(0)}%`);
  return [
    `idle ${idle.toFixed(0)}% of the sampled time; shares below are of the ${
      busy.toFixed(0)
    } ms not idle`,
    `by group: ${groups.join(", ")}`,
    "top by self time:",
    ...s.bySelf.map((f) => `  ${pct(f.pct)}  ${f.label}`),
    "top by inclusive time:",
    ...s.byTotal.map((f) => `  ${pct(f.pct)}  ${f.label}`),
  ];
}
