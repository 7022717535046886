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

/** The default run takes about 25 minutes on 2 cores; --quick about 6. */
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

/** A whole number ≥ 1 given as option `--name`; throws, naming the option, otherwise. */
export function wholeNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name} must be a whole number ≥ 1`);
  return value;
}

/** The options of a comparison's load (`--rounds`, `--seconds`, …), each a whole number ≥ 1. */
export function loadOptions(values: {
  rounds: string;
  seconds: string;
  "warm-up": string;
  connections: string;
  streams: string;
}) {
  return {
    rounds: wholeNumber("rounds", values.rounds),
    seconds: wholeNumber("seconds", values.seconds),
    warmUp: wholeNumber("warm-up", values["warm-up"]),
    connections: wholeNumber("connections", values.connections),
    streams: wholeNumber("streams", values.streams),
  };
}

/** How an HTTP/2 load keeps its calls in flight: `connections × streams` (calls per connection). */
export interface LoadShape {
  connections: number;
  streams: number;
}

/**
 * The shapes of a `--shapes` option, `CONNECTIONSxSTREAMS` separated by commas (`50x20,50x1`),
 * each once, in the order given.
 */
export function parseShapes(text: string): LoadShape[] {
  const shapes = text.split(",").map((item) => {
    const match = /^\s*(\d+)\s*[x×]\s*(\d+)\s*$/.exec(item);
    if (match === null) {
      throw new Error(`--shapes: "${item}" is not CONNECTIONSxSTREAMS, for example 50x20`);
    }
    return {
      connections: wholeNumber("shapes connections", match[1] as string),
      streams: wholeNumber("shapes streams", match[2] as string),
    };
  });
  const names = shapes.map(shapeName);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new Error(`--shapes: ${twice} is given twice`);
  return shapes;
}

/** `50 × 20`: a shape as the reports write it. */
export function shapeName(shape: LoadShape): string {
  return `${shape.connections} × ${shape.streams}`;
}
