import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { SpanContext } from "@opentelemetry/api";

/** gRPC's OK, which connect's `Code` leaves out. */
export const ok = 0;

/** Go's `codes.Code.String()`, indexed by code. */
export const codeNames = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

const grpcTypes = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
} as const;

export type Labels = Readonly<Record<string, string | number>>;

/** An exemplar as prom-client's registry prints it; one per series, overwritten in place. */
export interface Exemplar {
  labelSet: { trace_id: string; span_id: string };
  value: number;
  timestamp: number;
}

/** Everything recorded about one method, as plain numbers. */
export class MethodStats {
  /** Label names in the order Go's client prints them (sorted). */
  readonly labels: Labels;
  readonly codeLabels: Labels[];
  started = 0;
  received = 0;
  sent = 0;
  inFlight = 0;
  readonly handled = new Float64Array(codeNames.length);
  readonly handledExemplars: (Exemplar | undefined)[] = [];
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly buckets: Float64Array;
  readonly bucketExemplars: (Exemplar | undefined)[] = [];
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];

  constructor(method: DescMethod, bounds: readonly number[]) {
    this.bounds = bounds;
    const grpc_method = method.name;
    const grpc_service = method.parent.typeName;
    const grpc_type = grpcTypes[method.methodKind];
    this.labels = Object.freeze({ grpc_method, grpc_service, grpc_type });
    this.codeLabels = codeNames.map((grpc_code) =>
      Object.freeze({ grpc_code, grpc_method, grpc_service, grpc_type }),
    );
    this.buckets = new Float64Array(bounds.length + 1);
  }

  /** Counts a call as started and returns its start time. */
  begin(): number {
    this.started++;
    this.inFlight++;
    return performance.now();
  }

  /** Records a call's outcome and duration. */
  finish(code: number, start: number, exemplar: SpanContext | undefined): void {
    const seconds = (performance.now() - start) / 1e3;
    const c = code >= 0 && code < codeNames.length ? code : Code.Unknown;
    this.inFlight--;
    this.handled[c] = (this.handled[c] as number) + 1;
    const bounds = this.bounds;
    let b = 0;
    while (b < bounds.length && seconds > (bounds[b] as number)) b++;
    this.buckets[b] = (this.buckets[b] as number) + 1;
    this.sum += seconds;
    this.count++;
    if (exemplar !== undefined) {
      setExemplar(this.handledExemplars, c, exemplar, 1);
      setExemplar(this.bucketExemplars, b, exemplar, seconds);
    }
  }
}

/** Counts one message of a call: sent if `outgoing`, else received. */
export function countOne(stats: MethodStats, outgoing: boolean): void {
  if (outgoing) stats.sent++;
  else stats.received++;
}

function setExemplar(slots: (Exemplar | undefined)[], i: number, span: SpanContext, value: number) {
  let exemplar = slots[i];
  if (exemplar === undefined) {
    exemplar = { labelSet: { trace_id: "", span_id: "" }, value: 0, timestamp: 0 };
    slots[i] = exemplar;
  }
  exemplar.labelSet.trace_id = span.traceId;
  exemplar.labelSet.span_id = span.spanId;
  exemplar.value = value;
  exemplar.timestamp = Date.now() / 1e3;
}
