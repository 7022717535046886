import { loadReportTrailer, readLoadReport } from "./load-report.ts";

/**
 * The `weighted_round_robin` policy's settings, as grpc-go's (gRFC A58); every period in ms.
 */
export interface WeightedRoundRobinOptions {
  /**
   * How long an endpoint must have been reporting its load before its weight is used: until then
   * it gets the mean weight of the others, so that one early report cannot swing traffic.
   * Default 10000.
   */
  blackoutPeriodMs?: number;
  /**
   * A weight not refreshed by a report for this long is dropped (the endpoint gets the mean
   * again, and a new blackout period begins with its next report). Default 180000.
   */
  weightExpirationPeriodMs?: number;
  /** How often the weights in use are recomputed. Default 1000 (100 at the least). */
  weightUpdatePeriodMs?: number;
  /**
   * How much errors count against an endpoint: its weight is qps / (utilisation + penalty ×
   * eps / qps), so that an endpoint answering fast with errors does not draw the traffic.
   * Default 1.
   */
  errorUtilizationPenalty?: number;
}

/** An endpoint's weight, from the load reports of its responses. */
export class EndpointWeight {
  private value = 0;
  /** When the current run of usable reports began; undefined: none. */
  private nonEmptySince: number | undefined;
  private lastUpdated = 0;
  private lastTrailer: string | null = null;
  /** The weight in use, and when it was computed. */
  current = 0;
  computedAt = Number.NEGATIVE_INFINITY;
  /** The scheduler's credit (smooth weighted round robin). */
  credit = 0;

  private readonly settings: Required<WeightedRoundRobinOptions>;

  constructor(settings: Required<WeightedRoundRobinOptions>) {
    this.settings = settings;
  }

  /** Takes the load report of a response's trailers (or an error's metadata), if it has one. */
  report(trailers: Headers, now: number): void {
    const trailer = trailers.get(loadReportTrailer);
    if (trailer === null) return;
    // A server rebuilds its report once a second: the same value again needs no parsing.
    if (trailer === this.lastTrailer) {
      if (this.nonEmptySince !== undefined) this.lastUpdated = now;
      return;
    }
    this.lastTrailer = trailer;
    const report = readLoadReport(trailer);
    if (report === undefined) return;
    const utilization = report.applicationUtilization || report.cpuUtilization;
    const qps = report.rpsFractional;
    // As grpc-go: a report without utilisation or qps says nothing yet.
    if (!(utilization > 0 && qps > 0)) return;
    const penalty = (this.settings.errorUtilizationPenalty * report.eps) / qps;
    this.value = qps / (utilization + penalty);
    this.nonEmptySince ??= now;
    this.lastUpdated = now;
  }

  /** The weight at `now`: 0 while in its blackout period, once expired, or before any report. */
  weight(now: number): number {
    const { blackoutPeriodMs, weightExpirationPeriodMs } = this.settings;
    if (this.nonEmptySince === undefined) return 0;
    if (now - this.lastUpdated >= weightExpirationPeriodMs) {
      this.nonEmptySince = undefined;
      return 0;
    }
    if (blackoutPeriodMs > 0 && now - this.nonEmptySince < blackoutPeriodMs) return 0;
    return this.value;
  }

  /** What status shows: the weight in use, or undefined while the endpoint has none. */
  shown(): number | undefined {
    return this.current > 0 ? this.current : undefined;
  }
}

/** The settings with their defaults. */
export function weightSettings(
  options: WeightedRoundRobinOptions = {},
): Required<WeightedRoundRobinOptions> {
  return {
    blackoutPeriodMs: options.blackoutPeriodMs ?? 10_000,
    weightExpirationPeriodMs: options.weightExpirationPeriodMs ?? 180_000,
    weightUpdatePeriodMs: Math.max(100, options.weightUpdatePeriodMs ?? 1000),
    errorUtilizationPenalty: options.errorUtilizationPenalty ?? 1,
  };
}

/** What the weighted picker needs of an endpoint. */
export interface Weighted {
  readonly weight: EndpointWeight;
}

/** Weights are kept within these multiples of the mean, so that none is starved or flooded. */
const minRatio = 0.1;
const maxRatio = 10;

/**
 * A picker spreading calls in proportion to the endpoints' weights, interleaved (nginx's smooth
 * weighted round robin). Endpoints without a weight get the mean of the others'; with fewer
 * than two weights known, every endpoint weighs the same: plain round robin. Weights are
 * recomputed at most every `weightUpdatePeriodMs`.
 */
export function createWeightedPicker(
  settings: Required<WeightedRoundRobinOptions>,
  now: () => number = performance.now.bind(performance),
) {
  return <T extends Weighted>(candidates: readonly T[]): T => {
    const at = now();
    let sum = 0;
    let known = 0;
    for (const { weight } of candidates) {
      if (at - weight.computedAt >= settings.weightUpdatePeriodMs) {
        weight.current = weight.weight(at);
        weight.computedAt = at;
      }
      if (weight.current > 0) {
        sum += weight.current;
        known++;
      }
    }
    const mean = known === 0 ? 1 : sum / known;
    const uniform = known < 2;
    let total = 0;
    let best = candidates[0] as T;
    for (const candidate of candidates) {
      const w = candidate.weight;
      const effective = uniform
        ? 1
        : Math.min(mean * maxRatio, Math.max(mean * minRatio, w.current || mean));
      w.credit += effective;
      total += effective;
      if (w.credit > best.weight.credit) best = candidate;
    }
    best.weight.credit -= total;
    return best;
  };
}
