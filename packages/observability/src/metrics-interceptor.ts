import { Code, ConnectError, type Interceptor, type StreamRequest } from "@connectrpc/connect";
import { type SpanContext, TraceFlags, trace } from "@opentelemetry/api";
import { CountedStream, StreamCall } from "./counted-stream.ts";
import { countOne, type MethodStats, ok } from "./method-stats.ts";
import type { MethodTable } from "./method-table.ts";

/** What a client receives for an error thrown by a handler: connect sends plain errors as Internal. */
const serverCode = (e: unknown): number => (e instanceof ConnectError ? e.code : Code.Internal);
const clientCode = (e: unknown): number => ConnectError.from(e).code;

/**
 * One interceptor for both sides, recording into `table`: a server receives requests and sends
 * responses, a client the reverse.
 */
export function createMetricsInterceptor(table: MethodTable, server: boolean): Interceptor {
  const errorCode = server ? serverCode : clientCode;
  return (next) => (req) => {
    const stats = table.statsFor(req.method);
    // Taken as the call starts: the span is active while `next` is called, not when a stream ends.
    const exemplar = sampledSpan();
    const start = stats.begin();
    if (!req.stream) {
      countOne(stats, !server);
      // A promise and two closures, not an async function's frame: most calls are unary.
      let pending: Promise<Response>;
      try {
        pending = next(req);
      } catch (e) {
        pending = Promise.reject(e);
      }
      return pending.then(
        (res) => {
          if (!res.stream) {
            countOne(stats, server);
            stats.finish(ok, start, exemplar);
            return res;
          }
          const call = new StreamCall(stats, start, exemplar, errorCode, req.signal);
          return { ...res, message: new CountedStream(res.message, call, server, true) };
        },
        (e: unknown) => {
          stats.finish(errorCode(e), start, exemplar);
          throw e;
        },
      );
    }
    return streamed(next, req, stats, start, exemplar);
  };

  async function streamed(
    next: Next,
    req: StreamRequest,
    stats: MethodStats,
    start: number,
    exemplar: SpanContext | undefined,
  ): Promise<Response> {
    const call = new StreamCall(stats, start, exemplar, errorCode, req.signal);
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next({ ...req, message: new CountedStream(req.message, call, !server, false) });
    } catch (e) {
      call.end(errorCode(e));
      throw e;
    }
    if (!res.stream) {
      countOne(stats, server);
      call.end(ok);
      return res;
    }
    return { ...res, message: new CountedStream(res.message, call, server, true) };
  }
}

type Next = Parameters<Interceptor>[0];
type Response = Awaited<ReturnType<Next>>;

/** The span context of the active span, if it is sampled. */
function sampledSpan(): SpanContext | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const context = span.spanContext();
  return (context.traceFlags & TraceFlags.SAMPLED) !== 0 ? context : undefined;
}
