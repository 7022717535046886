import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { mapError } from "@keel/interceptors";
import { asConnect, rethrowAsConnect } from "./errors.ts";

type Handler = (this: unknown, ...args: unknown[]) => unknown;

/**
 * The service's methods with store errors turned into ConnectErrors where they are thrown, next
 * to the handler: every interceptor (metrics, logging, tracing, audit) then sees the code the
 * client gets, where a translation in the recovery interceptor came after metrics and logging had
 * already recorded INTERNAL. Unary and client-streaming handlers are mapped when their promise
 * rejects, server- and bidi-streaming ones when their response stream fails. Other errors pass
 * unchanged, for recovery to report as INTERNAL.
 */
export function mapStoreErrors<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
): ServiceImpl<S> {
  const handlers = impl as unknown as Record<string, Handler>;
  const mapped: Record<string, Handler> = { ...handlers };
  for (const method of service.methods) {
    const handler = handlers[method.localName];
    if (handler === undefined) continue;
    mapped[method.localName] =
      method.methodKind === "unary" || method.methodKind === "client_streaming"
        ? function (this: unknown, ...args) {
            let result: unknown;
            try {
              result = handler.apply(this, args);
            } catch (err) {
              rethrowAsConnect(err);
            }
            return result instanceof Promise ? result.catch(rethrowAsConnect) : result;
          }
        : function (this: unknown, ...args) {
            return mapError(handler.apply(this, args) as AsyncIterable<unknown>, asConnect);
          };
  }
  return mapped as unknown as ServiceImpl<S>;
}
