import type { Compression } from "@connectrpc/connect/protocol";
import type { Call } from "./call.ts";
import type { EngineContext } from "./engine-context.ts";
import type { Exchange } from "./exchange.ts";
import type { AnyResponse } from "./method-table.ts";
import { appendHeaders } from "./plain-headers.ts";

/**
 * What the protocols that answer without HTTP trailers (gRPC-Web, Connect) share: the call, its
 * exchange and compression, and the response headers, sent once before the first body byte.
 */
export abstract class BodyAnswer {
  protected readonly engine: EngineContext;
  protected readonly exchange: Exchange;
  protected readonly call: Call;
  protected readonly compress: Compression | null;

  constructor(engine: EngineContext, exchange: Exchange, call: Call, compress: Compression | null) {
    this.engine = engine;
    this.exchange = exchange;
    this.call = call;
    this.compress = compress;
  }

  /**
   * Sends HTTP 200 with the response's headers (the call's when the handler never answered),
   * unless they have gone out; false when the client has gone and nothing more can be written.
   */
  protected head(response: AnyResponse | undefined): boolean {
    const exchange = this.exchange;
    if (exchange.gone) return false;
    if (!exchange.headersSent) {
      exchange.respond(200, appendHeaders(response?.header ?? this.call.responseHeader, []), false);
    }
    return true;
  }

  /** Ends the answer with `chunk`, and tells a client still sending to stop. */
  protected last(chunk: Uint8Array): void {
    this.exchange.end(chunk);
    this.exchange.stopBody();
  }
}
