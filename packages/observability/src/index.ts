export type { ClientMetrics, ClientMetricsOptions } from "./client-metrics.ts";
export { createClientMetrics } from "./client-metrics.ts";
export type { HealthOptions, HealthStatus, ServingStatus } from "./health.ts";
export { createHealthService } from "./health.ts";
export type { MetricsHandlerOptions } from "./metrics-handler.ts";
export { createMetricsHandler } from "./metrics-handler.ts";
export type { ProfileKind, ProfileOptions } from "./profiler.ts";
export { ProfilerBusyError, profileExtensions, takeProfile } from "./profiler.ts";
export type { ReflectionOptions, ReflectionServices } from "./reflection.ts";
export { createReflectionServices, registerReflection } from "./reflection.ts";
export type { RefusalMetrics } from "./refusal-metrics.ts";
export { createRefusalMetrics } from "./refusal-metrics.ts";
export type { ServerMetrics, ServerMetricsOptions } from "./server-metrics.ts";
export { createServerMetrics } from "./server-metrics.ts";
export type { ShedMetrics, ShedMetricsOptions } from "./shed-metrics.ts";
export { createShedMetrics } from "./shed-metrics.ts";
export type { StoreMetricsOptions, StorePoolStats } from "./store-metrics.ts";
export { createStoreMetrics } from "./store-metrics.ts";
export type { Tracing, TracingInterceptorOptions, TracingOptions } from "./tracing.ts";
export {
  createClientTracingInterceptor,
  createTracingInterceptor,
  serveInUnsampledTraces,
  startTracing,
} from "./tracing.ts";
