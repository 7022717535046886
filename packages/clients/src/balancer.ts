import type {
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamResponse,
  type Transport,
} from "@connectrpc/connect";
import type { CircuitBreaker, CircuitPermit, CircuitState } from "./circuit-breaker.ts";
import { classifyEndpointError, unsentError } from "./endpoint-errors.ts";
import type { EndpointHealth, EndpointHealthStatus } from "./endpoint-health.ts";
import { type BalancingPolicy, createPicker, type Pickable } from "./pickers.ts";
import {
  EndpointWeight,
  type WeightedRoundRobinOptions,
  weightSettings,
} from "./weighted-round-robin.ts";

/** What a call's headers may be given as. */
type HeadersInit = ConstructorParameters<typeof Headers>[0];

/** One endpoint of a balanced service. */
export interface BalancedEndpoint {
  /** Its base URL, for messages and status. */
  url: string;
  /** The transport that calls it. */
  transport: Transport;
  /** Whether it can take calls; told about broken connections. Default: always available. */
  health?: EndpointHealth;
  /** Its circuit breaker, told every call's outcome. Default: none. */
  breaker?: CircuitBreaker;
  /** Closes its connections; called once it has left the balancer and its last call has ended. */
  close?(): void;
}

/** A snapshot of one endpoint, for diagnostics and tests. */
export interface EndpointStatus extends Partial<EndpointHealthStatus> {
  url: string;
  /** Whether the next call may be sent to it. */
  available: boolean;
  /** Its circuit's state, or undefined without a breaker. */
  circuit: CircuitState | undefined;
  /** Calls in flight on it now. */
  inFlight: number;
  /** Calls (attempts) sent to it so far. */
  calls: number;
  /** Calls (attempts) to it that failed so far, with any code. */
  errors: number;
  /**
   * Its weight under `weighted_round_robin` (qps / utilisation from its load reports), or
   * undefined while it has none in use (no reports yet, in its blackout period, or expired).
   */
  weight?: number;
}

export interface BalancingTransportOptions {
  /**
   * The endpoints. None means they are still being resolved: calls wait for `update` (or fail
   * at `resolutionFailed`), within their deadline.
   */
  endpoints: BalancedEndpoint[];
  /** How calls are spread. Default "round_robin". */
  policy?: BalancingPolicy;
  /** The settings of the `weighted_round_robin` policy; see `WeightedRoundRobinOptions`. */
  weightedRoundRobin?: WeightedRoundRobinOptions;
  /** Random numbers in [0, 1), for the pickers. Default `Math.random`. */
  random?: () => number;
}

/** A transport that sends each call to one of several endpoints. */
export interface BalancingTransport extends Transport {
  /** The endpoints' state now, in configuration order. */
  endpoints(): EndpointStatus[];
  /**
   * Replaces the endpoints, matched by `url`: new ones join the rotation; those no longer listed
   * leave it at once and are closed once their calls in flight have ended. An endpoint at a url
   * already there is closed at once: the one there stays, with its connection and state.
   */
  update(endpoints: BalancedEndpoint[]): void;
  /**
   * Says why there are no endpoints (their names could not be resolved): calls waiting for
   * endpoints fail with UNAVAILABLE and this reason, as do new calls while there are none.
   */
  resolutionFailed(reason: string): void;
  /** Closes every endpoint, those still finishing calls after leaving the rotation too. */
  close(): void;
}

/** An endpoint with its load. */
class Slot implements Pickable {
  readonly endpoint: BalancedEndpoint;
  /** Its weight from load reports, under `weighted_round_robin` only. */
  readonly weight: EndpointWeight | undefined;
  inFlight = 0;
  calls = 0;
  errors = 0;
  constructor(
    endpoint: BalancedEndpoint,
    weighted: Required<WeightedRoundRobinOptions> | undefined,
  ) {
    this.endpoint = endpoint;
    this.weight = weighted === undefined ? undefined : new EndpointWeight(weighted);
  }
  available(): boolean {
    return (this.endpoint.health?.available() ?? true) && (this.endpoint.breaker?.allows() ?? true);
  }
  /**
   * Whether it may be tried when no endpoint is available: its circuit lets calls through and
   * its server has not said NOT_SERVING; only its connection is in doubt.
   */
  worthTrying(): boolean {
    return (
      (this.endpoint.breaker?.allows() ?? true) &&
      this.endpoint.health?.status().health !== "not_serving"
    );
  }
  /** Why it is unavailable, when it is. */
  reason(): string {
    const circuit = this.endpoint.breaker?.state();
    if (circuit !== undefined && circuit !== "closed")
      return `circuit ${circuit.replace("_", "-")}`;
    return this.endpoint.health?.status().reason ?? "unavailable";
  }
}

const noPermit: CircuitPermit = () => {};

/**
 * A Connect transport over several endpoints: each call goes to one available endpoint, chosen
 * by the policy. An endpoint is available when its health allows it (its connection works, its
 * health Watch does not say NOT_SERVING) and its circuit breaker lets calls through. When none
 * is, calls go to those whose only fault is their connection (panic routing); when there are
 * none of those either (every server says NOT_SERVING or every circuit is open), a call fails
 * with UNAVAILABLE without being sent, which a retrying transport on top may retry. Every outcome
 * feeds the endpoint's circuit breaker; a broken connection is reported to its health and becomes
 * UNAVAILABLE (connect-node reports a reset as ABORTED).
 *
 * A streaming call counts as in flight until its response ends or its signal aborts, and reports
 * success to the circuit breaker at its first message.
 */
export function createBalancingTransport(options: BalancingTransportOptions): BalancingTransport {
  const policy = options.policy ?? "round_robin";
  const weighted =
    policy === "weighted_round_robin" ? weightSettings(options.weightedRoundRobin) : undefined;
  const newSlot = (endpoint: BalancedEndpoint) => new Slot(endpoint, weighted);
  let slots = options.endpoints.map(newSlot);
  const pick = createPicker(policy, options.random, options.weightedRoundRobin);
  /** Slots that left the rotation with calls in flight: closed when the last one ends. */
  const draining = new Set<Slot>();
  /** Why there are no endpoints; empty while the first resolution is awaited. */
  let emptyReason = "";
  /** Calls waiting for the first endpoints. */
  const waiters = new Set<() => void>();
  const wake = () => {
    const woken = [...waiters];
    waiters.clear();
    for (const resolve of woken) resolve();
  };

  /**
   * Waits until there are endpoints or their resolution failed; fails when `signal` aborts or
   * `timeoutMs` (the call's deadline) passes first.
   */
  const endpointsKnown = (signal: AbortSignal | undefined, timeoutMs: number | undefined) =>
    new Promise<void>((resolve, reject) => {
      const stop = () => {
        signal?.removeEventListener("abort", onAbort);
        clearTimeout(timer);
        waiters.delete(known);
      };
      const known = () => {
        stop();
        resolve();
      };
      const onAbort = () => {
        stop();
        reject(ConnectError.from(signal?.reason));
      };
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              stop();
              reject(
                new ConnectError(
                  "the deadline passed while the endpoints were being resolved",
                  Code.DeadlineExceeded,
                ),
              );
            }, timeoutMs);
      if (signal?.aborted === true) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      waiters.add(known);
    });

  const release = (slot: Slot) => {
    slot.inFlight--;
    if (slot.inFlight === 0 && draining.delete(slot)) slot.endpoint.close?.();
  };

  /** `choose`, once there are endpoints; with what is left of `timeoutMs` after the wait. */
  const chooseWhenKnown = async (
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) => {
    const start = performance.now();
    if (slots.length === 0 && emptyReason === "") await endpointsKnown(signal, timeoutMs);
    const chosen = choose();
    if (timeoutMs !== undefined) {
      chosen.timeoutMs = Math.max(1, Math.round(timeoutMs - (performance.now() - start)));
    }
    return chosen;
  };

  const choose = (
    timeoutMs?: number,
  ): { slot: Slot; permit: CircuitPermit; timeoutMs: number | undefined } => {
    if (slots.length === 0) throw unsentError(emptyReason || "no endpoint is known");
    let candidates = slots.filter((slot) => slot.available());
    // Panic routing, as Envoy's: with every endpoint out, try those only their connection keeps
    // out, so that a recovered service is noticed at the next call, not after the reconnect
    // backoff. A refused connection fails fast, and the call was never sent.
    if (candidates.length === 0) candidates = slots.filter((slot) => slot.worthTrying());
    if (candidates.length === 0) {
      const reasons = slots.map((s) => `${s.endpoint.url} (${s.reason()})`).join(", ");
      throw unsentError(`no endpoint is available: ${reasons}`);
    }
    const slot = pick(candidates);
    const permit = slot.endpoint.breaker === undefined ? noPermit : slot.endpoint.breaker.acquire();
    if (permit === undefined) throw unsentError(`${slot.endpoint.url}: circuit open`);
    slot.inFlight++;
    slot.calls++;
    return { slot, permit, timeoutMs };
  };

  /** Records a failed call and returns the error to pass on. */
  const failed = (
    slot: Slot,
    permit: CircuitPermit,
    err: unknown,
    signal: AbortSignal | undefined,
  ): ConnectError => {
    slot.errors++;
    if (slot.weight !== undefined && err instanceof ConnectError) {
      slot.weight.report(err.metadata, performance.now());
    }
    // A call the caller cancelled (or whose deadline passed) says nothing about the endpoint.
    if (signal?.aborted === true) {
      const error = ConnectError.from(err);
      permit(error.code === Code.DeadlineExceeded ? error.code : Code.Canceled);
      return error;
    }
    const { error, connection } = classifyEndpointError(err, slot.endpoint.url);
    if (connection) slot.endpoint.health?.connectionFailed(error.rawMessage);
    permit(error.code);
    return error;
  };

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ) {
      const {
        slot,
        permit,
        timeoutMs: left,
      } = slots.length > 0 ? choose(timeoutMs) : await chooseWhenKnown(signal, timeoutMs);
      try {
        const res = await slot.endpoint.transport.unary(
          method,
          signal,
          left,
          header,
          input,
          contextValues,
        );
        permit(undefined);
        slot.weight?.report(res.trailer, performance.now());
        return res;
      } catch (err) {
        throw failed(slot, permit, err, signal);
      } finally {
        release(slot);
      }
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ) {
      const {
        slot,
        permit,
        timeoutMs: left,
      } = slots.length > 0 ? choose(timeoutMs) : await chooseWhenKnown(signal, timeoutMs);
      // Connect's clients do not tell a transport when the caller stops reading a stream; they
      // abort the call's signal when it is cancelled, its deadline passes, or it completes.
      const onAbort = () => {
        const reason: unknown = signal?.reason;
        permit(reason instanceof ConnectError ? reason.code : Code.Canceled);
        end();
      };
      let open = true;
      const end = () => {
        if (open) {
          release(slot);
          signal?.removeEventListener("abort", onAbort);
        }
        open = false;
      };
      if (signal?.aborted === true) onAbort();
      else signal?.addEventListener("abort", onAbort);
      let res: StreamResponse<I, O>;
      try {
        res = await slot.endpoint.transport.stream(
          method,
          signal,
          left,
          header,
          input,
          contextValues,
        );
      } catch (err) {
        end();
        throw failed(slot, permit, err, signal);
      }
      const source = res.message;
      const message: StreamResponse<I, O>["message"] = {
        [Symbol.asyncIterator]() {
          const it = source[Symbol.asyncIterator]();
          return {
            async next() {
              try {
                const result = await it.next();
                permit(undefined);
                if (result.done === true) {
                  slot.weight?.report(res.trailer, performance.now());
                  end();
                }
                return result;
              } catch (err) {
                end();
                throw failed(slot, permit, err, signal);
              }
            },
            async return(value?: unknown) {
              permit(Code.Canceled);
              end();
              return (await it.return?.(value)) ?? { done: true, value: undefined };
            },
          };
        },
      };
      return { ...res, message };
    },

    endpoints() {
      return slots.map((slot) => ({
        url: slot.endpoint.url,
        available: slot.available(),
        circuit: slot.endpoint.breaker?.state(),
        inFlight: slot.inFlight,
        calls: slot.calls,
        errors: slot.errors,
        ...(slot.weight?.shown() === undefined ? {} : { weight: slot.weight.shown() }),
        ...slot.endpoint.health?.status(),
      }));
    },

    update(endpoints) {
      const byUrl = new Map(slots.map((slot) => [slot.endpoint.url, slot]));
      slots = endpoints.map((endpoint) => {
        const kept = byUrl.get(endpoint.url);
        if (kept === undefined) return newSlot(endpoint);
        byUrl.delete(endpoint.url);
        if (kept.endpoint !== endpoint) endpoint.close?.();
        return kept;
      });
      for (const gone of byUrl.values()) {
        if (gone.inFlight === 0) gone.endpoint.close?.();
        else draining.add(gone);
      }
      if (slots.length > 0) emptyReason = "";
      wake();
    },

    resolutionFailed(reason) {
      if (slots.length > 0) return;
      emptyReason = reason;
      wake();
    },

    close() {
      for (const slot of [...slots, ...draining]) slot.endpoint.close?.();
      draining.clear();
    },
  };
}
