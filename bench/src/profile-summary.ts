/**
 * Where a V8 CPU profile (Node.js with `--cpu-prof`) spends its time: self time summed by function and
 * file, and by package; total time of our own functions; optionally only within a time window.
 *
 *   node bench/src/profile-summary.ts FILE.cpuprofile [TOP]
 */
import { readFileSync } from "node:fs";

/** The parts of a .cpuprofile that are read here. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  /** Microseconds, on the monotonic clock. */
  startTime: number;
  endTime: number;
  /** The node sampled at each tick. */
  samples: number[];
  /** Microseconds since the previous sample (the first: since startTime). */
  timeDeltas: number[];
}

export interface SelfTime {
  /** `functionName url:line`, or a package name. */
  name: string;
  micros: number;
  /** Share of the busy time (everything but `(idle)`), 0–1. */
  share: number;
}

export interface ProfileSummary {
  /** Sampled time in the window, idle included, in microseconds. */
  totalMicros: number;
  busyMicros: number;
  functions: SelfTime[];
  packages: SelfTime[];
  /**
   * Our functions (packages/*, gen) by total time: their own and that of everything they call
   * synchronously (work after an `await` shows under whatever resumed it).
   */
  ours: SelfTime[];
}

/**
 * Sums self time by function (name, file and line) and by package. A sample's time is the gap to
 * the next sample, as Chrome DevTools counts it. With a window, only samples taken within
 * [fromMicros, toMicros] of the monotonic clock count.
 */
export function summarizeProfile(
  profile: CpuProfile,
  window?: { fromMicros: number; toMicros: number },
): ProfileSummary {
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parents.set(child, node.id);
  }
  const byFunction = new Map<string, number>();
  const ours = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const next =
      i + 1 < profile.samples.length ? (profile.timeDeltas[i + 1] ?? 0) : profile.endTime - at;
    if (window !== undefined && (at < window.fromMicros || at > window.toMicros)) continue;
    const frame = frames.get(profile.samples[i] as number);
    if (frame === undefined) continue;
    total += next;
    if (frame.functionName === "(idle)") idle += next;
    const name = frameName(frame);
    byFunction.set(name, (byFunction.get(name) ?? 0) + next);
    const pkg = packageOf(frame.url, frame.functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + next);
    // Each of our functions on this sample's stack gets its time once, however deep it recurses.
    const onStack = new Set<string>();
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parents.get(id)) {
      const caller = frames.get(id);
      if (caller !== undefined && packageOf(caller.url, caller.functionName).startsWith("@keel/"))
        onStack.add(frameName(caller));
    }
    for (const own of onStack) ours.set(own, (ours.get(own) ?? 0) + next);
  }
  const busy = total - idle;
  const rank = (map: Map<string, number>) =>
    [...map]
      .filter(([name]) => name !== "(idle)")
      .map(([name, micros]) => ({ name, micros, share: busy === 0 ? 0 : micros / busy }))
      .sort((a, b) => b.micros - a.micros);
  return {
    totalMicros: total,
    busyMicros: busy,
    functions: rank(byFunction),
    packages: rank(byPackage),
    ours: rank(ours),
  };
}

/** `functionName file:line`, or the bare name of V8's pseudo-frames. */
function frameName(frame: CpuProfile["nodes"][number]["callFrame"]): string {
  const name = frame.functionName || "(anonymous)";
  return frame.url === "" ? name : `${name} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/**
 * Who a frame belongs to: an npm package (`@connectrpc/connect`), one of ours (`@keel/server`),
 * a module of Node itself (`node:internal/http2/core`), or V8's pseudo-frames
 * (`(garbage collector)`, `(program)`).
 */
export function packageOf(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:")) return url;
  const modules = url.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + "/node_modules/".length).split("/");
    return scope?.startsWith("@") ? `${scope}/${name}` : (scope ?? url);
  }
  const ours = /\/(packages|gen|bench)\/([^/]+)?/.exec(url);
  if (ours !== null) return ours[1] === "packages" ? `@keel/${ours[2]}` : `@keel/${ours[1]}`;
  return shortUrl(url);
}

/** A URL without file://, and without the path up to node_modules or the repository's folders. */
function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, "");
  const modules = path.lastIndexOf("/node_modules/");
  if (modules >= 0)
    return path
      .slice(modules + "/node_modules/".length)
      .replace(/^\.pnpm\/[^/]+\/node_modules\//, "");
  const ours = /\/(packages|gen|bench)\/.*$/.exec(path);
  return ours === null ? path : ours[0].slice(1);
}

/** The summary as markdown tables: the top functions and every package above 0.5%. */
export function formatSummary(summary: ProfileSummary, top = 25): string {
  const ms = (micros: number) => (micros / 1000).toFixed(0);
  const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    `Sampled ${ms(summary.totalMicros)} ms, busy (not idle) ${ms(summary.busyMicros)} ms.`,
    "",
    `Top ${top} functions by self time (share of busy time):`,
    "",
    row(["#", "function (file:line)", "self ms", "share"]),
    row(["--:", "---", "--:", "--:"]),
    ...summary.functions
      .slice(0, top)
      .map((f, i) =>
        row([String(i + 1), `\`${f.name.replaceAll("|", "\\|")}\``, ms(f.micros), pct(f.share)]),
      ),
    "",
    "Self time by package (Node by module), above 0.5%:",
    "",
    row(["package", "self ms", "share"]),
    row(["---", "--:", "--:"]),
    ...summary.packages
      .filter((p) => p.share >= 0.005)
      .map((p) => row([`\`${p.name}\``, ms(p.micros), pct(p.share)])),
    "",
    `Our own functions by total time (theirs and what they call synchronously; work after an ` +
      `\`await\` counts under whatever resumed it), top ${top}:`,
    "",
    row(["#", "function (file:line)", "total ms", "share"]),
    row(["--:", "---", "--:", "--:"]),
    ...summary.ours
      .slice(0, top)
      .map((f, i) =>
        row([String(i + 1), `\`${f.name.replaceAll("|", "\\|")}\``, ms(f.micros), pct(f.share)]),
      ),
    "",
  ].join("\n");
}

if (import.meta.main) {
  const [file, top] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write("usage: node bench/src/profile-summary.ts FILE.cpuprofile [TOP]\n");
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  process.stdout.write(formatSummary(summarizeProfile(profile), Number(top ?? 25)));
}
