import {
  createWeightedPicker,
  type EndpointWeight,
  type Weighted,
  type WeightedRoundRobinOptions,
  weightSettings,
} from "./weighted-round-robin.ts";

/**
 * How calls are spread over a service's endpoints:
 *
 * - `pick_first`: every call goes to the first available endpoint in the list; the others are
 *   fallbacks (gRPC's default policy).
 * - `round_robin`: calls take turns over the available endpoints.
 * - `least_request`: of two available endpoints chosen at random, the call goes to the one with
 *   fewer calls in flight ("power of two choices", Envoy's and Finagle's default), which steers
 *   calls away from slow endpoints without the herd behaviour of always picking the least loaded.
 * - `weighted_round_robin`: calls take turns in proportion to each endpoint's weight, qps /
 *   utilisation from the load reports its responses carry (ORCA's `endpoint-load-metrics-bin`
 *   trailer, which keel's servers send), as grpc-go's policy of that name; see
 *   `WeightedRoundRobinOptions`. Endpoints that send no reports are taken turns with equally.
 */
export type BalancingPolicy =
  | "pick_first"
  | "round_robin"
  | "least_request"
  | "weighted_round_robin";

/** What a picker needs to know about an endpoint. */
export interface Pickable {
  /** Calls in flight on the endpoint now. */
  readonly inFlight: number;
  /** Its weight from load reports: needed by `weighted_round_robin` only. */
  readonly weight?: EndpointWeight;
}

/** Chooses one of a non-empty list of available endpoints, given in configuration order. */
export type Picker = <T extends Pickable>(candidates: readonly T[]) => T;

/**
 * A picker for `policy`. `random` returns numbers in [0, 1) (default `Math.random`); `weighted`
 * holds `weighted_round_robin`'s settings (defaults as `WeightedRoundRobinOptions` says).
 */
export function createPicker(
  policy: BalancingPolicy,
  random: () => number = Math.random,
  weighted: WeightedRoundRobinOptions = {},
): Picker {
  switch (policy) {
    case "weighted_round_robin": {
      const pick = createWeightedPicker(weightSettings(weighted));
      // The balancer's endpoints all carry a weight.
      return (candidates) =>
        pick(
          candidates as unknown as readonly Weighted[],
        ) as unknown as (typeof candidates)[number];
    }
    case "pick_first":
      return (candidates) => candidates[0] as (typeof candidates)[number];
    case "round_robin": {
      // A random start, so that many clients created at once do not all begin with the same one.
      let next = Math.floor(random() * 1024);
      return (candidates) => candidates[next++ % candidates.length] as (typeof candidates)[number];
    }
    case "least_request":
      return (candidates) => {
        const n = candidates.length;
        const i = Math.floor(random() * n);
        if (n === 1) return candidates[i] as (typeof candidates)[number];
        let j = Math.floor(random() * (n - 1));
        if (j >= i) j++;
        const a = candidates[i] as (typeof candidates)[number];
        const b = candidates[j] as (typeof candidates)[number];
        return b.inFlight < a.inFlight ? b : a;
      };
    default:
      throw new RangeError(
        `unknown balancing policy ${JSON.stringify(policy)}; use pick_first, round_robin, least_request or weighted_round_robin`,
      );
  }
}
