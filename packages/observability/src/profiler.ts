import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * What a profile records: `cpu` samples the stacks running JavaScript (a `.cpuprofile`),
 * `heap-sampling` samples the allocations made while it runs, collected ones included (a
 * `.heapprofile`), and
 * `heap-snapshot` writes every object on the heap at one moment (a `.heapsnapshot`; the process
 * stops while it is written, and it can be as large as the heap).
 */
export type ProfileKind = "cpu" | "heap-sampling" | "heap-snapshot";

/** The file name extension Chrome DevTools and VS Code open each kind with. */
export const profileExtensions: Readonly<Record<ProfileKind, string>> = {
  cpu: ".cpuprofile",
  "heap-sampling": ".heapprofile",
  "heap-snapshot": ".heapsnapshot",
};

export interface ProfileOptions {
  kind: ProfileKind;
  /** How long `cpu` and `heap-sampling` record, in seconds; ignored by `heap-snapshot`. */
  seconds: number;
  /** Stops the recording early and discards it (for example when the caller went away). */
  signal?: AbortSignal;
}

/** Thrown when a profile is asked for while another one is being taken in this process. */
export class ProfilerBusyError extends Error {
  override readonly name = "ProfilerBusyError";
}

let busy = false;

/**
 * Profiles this process through `node:inspector` (no flag or restart needed) and writes the
 * result to a new file in the system's temporary directory, whose path it returns: the caller
 * sends it on and removes it. One profile at a time per process: another one asked for meanwhile
 * gets `ProfilerBusyError`. CPU sampling every millisecond and heap sampling every 32 KiB cost a
 * few per cent while they run, nothing once they stop.
 */
export async function takeProfile(options: ProfileOptions): Promise<string> {
  if (busy) throw new ProfilerBusyError("a profile is being taken already; try again when it ends");
  busy = true;
  const dir = mkdtempSync(join(tmpdir(), "keel-profile-"));
  const path = join(dir, `profile${profileExtensions[options.kind]}`);
  const session = new Session();
  session.connect();
  try {
    const fd = openSync(path, "wx", 0o600);
    try {
      await record(session, options, (text) => writeSync(fd, text));
    } finally {
      closeSync(fd);
    }
    return path;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    session.disconnect();
    busy = false;
  }
}

async function record(
  session: Session,
  { kind, seconds, signal }: ProfileOptions,
  write: (text: string) => void,
): Promise<void> {
  signal?.throwIfAborted();
  const wait = () => sleep(seconds * 1000, undefined, signal ? { signal } : {});
  if (kind === "cpu") {
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
    try {
      await wait();
    } finally {
      const { profile } = await session.post("Profiler.stop");
      if (!signal?.aborted) write(JSON.stringify(profile));
    }
  } else if (kind === "heap-sampling") {
    await session.post("HeapProfiler.enable");
    // Objects already collected count too: the profile shows where memory is allocated during
    // the recording (the churn that drives GC), not only what is still alive at its end.
    await session.post("HeapProfiler.startSampling", {
      samplingInterval: 32 * 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    try {
      await wait();
    } finally {
      const { profile } = await session.post("HeapProfiler.stopSampling");
      if (!signal?.aborted) write(JSON.stringify(profile));
    }
  } else {
    // The snapshot arrives in chunks while the call runs; each is written at once, so it is never
    // held whole in memory.
    session.on("HeapProfiler.addHeapSnapshotChunk", (message) => write(message.params.chunk));
    await session.post("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  }
}
