import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type SpanContext, TraceFlags, trace } from "@opentelemetry/api";
import { CountedStream, StreamCall } from "./counted-stream.ts";
import { countOne, ok } from "./method-stats.ts";
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
  return (next) => async (req) => {
    const stats = table.statsFor(req.method);
    // Taken as the call starts: the span is active while `next` is called, not when a stream ends.
    const exemplar = sampledSpan();
    const start = stats.begin();
    if (!req.stream) {
      countOne(stats, !server);
      let res: Awaited<ReturnType<typeof next>>;
      try {
        res = await next(req);
      } catch (e) {
        stats.finish(errorCode(e), start, exemplar);
        throw e;
      }
      if (!res.stream) {
        countOne(stats, server);
        stats.finish(ok, start, exemplar);
        return res;
      }
      const call = new StreamCall(stats, start, exemplar, errorCode, req.signal);
      return { ...res, message: new CountedStream(res.message, call, server, true) };
    }
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
  };
}

/** The span context of the active span, if it is sampled. */
function sampledSpan(): SpanContext | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const context = span.spanContext();
  return (context.traceFlags & TraceFlags.SAMPLED) !== 0 ? context : undefined;
}
