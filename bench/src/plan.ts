/** How long and how often each measurement runs. */
export interface Plan {
  mode: "full" | "quick";
  /** Each scenario measures its targets in turns (A B C A B C …) this many times; medians reported. */
  repetitions: number;
  /** Length of each timed unary load. */
  unarySeconds: number;
  /** Unmeasured load on each freshly started target before its first measurement (JIT, caches). */
  warmupSeconds: number;
  /** Length of each server-streaming load. */
  streamSeconds: number;
  /** Messages each streaming call reads (our server: the user's recorded activities). */
  streamMessages: number;
  /**
   * Calls each of the 10,000 connections makes, one per second. Opening them all takes 2.5 s, so
   * all are open at once only when this is larger than 3.
   */
  callsPerConnection: number;
  /** How long the 10,000-connection load may run past its last call before it is stopped. */
  catchUpSeconds: number;
  /** Length of the load our server is CPU-profiled under. */
  profileSeconds: number;
  /** Before each measurement, wait at most this long for other processes to leave the CPUs. */
  quietWaitSeconds: number;
}

/** The default run takes about 13 minutes on 2 cores; --quick about 2. */
export const plans: Record<Plan["mode"], Plan> = {
  full: {
    mode: "full",
    repetitions: 3,
    unarySeconds: 5,
    // Our server's first seconds of load still compile: --trace-opt counted 1.1 s of TurboFan
    // work between its 6th and 11th second, then about 1.5% of a core.
    warmupSeconds: 10,
    streamSeconds: 5,
    streamMessages: 100,
    callsPerConnection: 8,
    catchUpSeconds: 8,
    profileSeconds: 10,
    quietWaitSeconds: 10,
  },
  quick: {
    mode: "quick",
    repetitions: 1,
    unarySeconds: 2,
    warmupSeconds: 1,
    streamSeconds: 2,
    streamMessages: 100,
    callsPerConnection: 5,
    catchUpSeconds: 4,
    profileSeconds: 4,
    quietWaitSeconds: 3,
  },
};

/** The CPUs: targets run on one, load generators on the other, so each side has a core. */
export const serverCpu = 1;
export const loadCpu = 0;

/** The options of a comparison's load (`--rounds`, `--seconds`, …), each a whole number ≥ 1. */
export function loadOptions(values: {
  rounds: string;
  seconds: string;
  "warm-up": string;
  connections: string;
  streams: string;
}) {
  const number = (name: keyof typeof values) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`--${name} must be a whole number ≥ 1`);
    return value;
  };
  return {
    rounds: number("rounds"),
    seconds: number("seconds"),
    warmUp: number("warm-up"),
    connections: number("connections"),
    streams: number("streams"),
  };
}
