export type { CallState, DefaultDeadline } from "./call.ts";
export { createCallValues } from "./context-values.ts";
export type { Engine, EngineOptions } from "./engine.ts";
export { createEngine } from "./engine.ts";
export { type Exchange, rawFields, StreamExchange } from "./exchange.ts";
export type { InProcessTransportOptions } from "./in-process-transport.ts";
export type { InvokeBody, InvokeOptions, InvokeResult, ReadBody } from "./invoke.ts";
export type { AnyRequest, AnyResponse, EngineMethod } from "./method-table.ts";
export { PlainHeaders } from "./plain-headers.ts";
