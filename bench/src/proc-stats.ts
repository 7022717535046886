import { readdirSync, readFileSync } from "node:fs";

/** Linux's USER_HZ: the unit of utime and stime in /proc/<pid>/stat (100 on every Linux ABI). */
const clockTicksPerSecond = 100;

/** `pid` and every process below it (a cluster's workers), from /proc. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] as number) ?? []));
  return tree;
}

/** User plus system CPU time used so far by these processes, in microseconds. */
export function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    if (stat !== undefined) ticks += stat.utime + stat.stime;
  }
  return (ticks * 1e6) / clockTicksPerSecond;
}

/** Resident memory of these processes (VmRSS summed), in bytes. */
export function rssBytes(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readOrEmpty(`/proc/${pid}/status`));
    if (match !== null) kib += Number(match[1]);
  }
  return kib * 1024;
}

/** Open file descriptors of these processes (sockets included). */
export function openFds(pids: readonly number[]): number {
  let count = 0;
  for (const pid of pids) {
    try {
      count += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // The process is gone.
    }
  }
  return count;
}

/** Peaks of RSS and open descriptors, sampled on a timer while a load runs. */
export interface PeakSampler {
  /** Stops sampling and returns the peaks seen (one last sample included). */
  stop(): { rssBytes: number; fds: number };
}

/**
 * Samples the tree under `pid` every `intervalMs`: resident memory always, open descriptors when
 * `fds` is set (listing them costs more with 10,000 connections open).
 */
export function samplePeaks(
  pid: number,
  options: { intervalMs: number; fds: boolean },
): PeakSampler {
  const pids = processTree(pid);
  let rss = 0;
  let fds = 0;
  const sample = () => {
    rss = Math.max(rss, rssBytes(pids));
    if (options.fds) fds = Math.max(fds, openFds(pids));
  };
  sample();
  const timer = setInterval(sample, options.intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { rssBytes: rss, fds };
    },
  };
}

function readStat(pid: number): { ppid: number; utime: number; stime: number } | undefined {
  const text = readOrEmpty(`/proc/${pid}/stat`);
  // The command name (field 2) is in parentheses and may hold spaces: split after its last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  if (fields.length < 13) return undefined;
  // After the name: state(3) ppid(4) … utime(14) stime(15), so indices 1, 11 and 12 here.
  return { ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]) };
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * Busy time of one CPU so far (user, nice, system and steal from /proc/stat), in microseconds:
 * with the server's own time subtracted, what else ran on its core. Interrupt time is left out:
 * the kernel handles the load's own packets there.
 */
export function cpuBusyMicros(cpu: number): number {
  const line = readOrEmpty("/proc/stat")
    .split("\n")
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) return Number.NaN;
  const [, user, nice, system, , , , , steal] = line.split(/\s+/).map(Number);
  const ticks = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (steal ?? 0);
  return (ticks * 1e6) / clockTicksPerSecond;
}
