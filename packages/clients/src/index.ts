export type { EndpointStatus } from "./balancer.ts";
export type { TokenSource } from "./bearer-token.ts";
export { createBearerTokenInterceptor } from "./bearer-token.ts";
export type { CircuitBreakerOptions, CircuitState } from "./circuit-breaker.ts";
export type {
  ClientCredentialsOptions,
  ClientCredentialsProvider,
} from "./client-credentials.ts";
export { createClientCredentialsProvider } from "./client-credentials.ts";
export type { ClientOptions, ClientTransport } from "./client-transport.ts";
export { createClientTransport } from "./client-transport.ts";
export type { DnsLookup, NameResolutionOptions } from "./dns-resolver.ts";
export type { Connectivity, EndpointHealthStatus, HealthState } from "./endpoint-health.ts";
export type { IdempotencyOptions } from "./idempotency.ts";
export { defaultIdempotentMethods } from "./idempotency.ts";
export type { OrderClient, OrderClientOptions } from "./order-client.ts";
export { createOrderClient } from "./order-client.ts";
export type { BalancingPolicy } from "./pickers.ts";
export type { RequestIdPropagationOptions } from "./request-id.ts";
export { createRequestIdPropagationInterceptor } from "./request-id.ts";
export type { RetryOptions } from "./retry.ts";
export { serverRetryDelayMs } from "./retry.ts";
export type { RetryBudgetOptions } from "./retry-budget.ts";
export type { TokenPair, TokenProviderOptions } from "./token-provider.ts";
export { createTokenProvider } from "./token-provider.ts";
export type { ConnectionOptions, Protocol, TlsOptions, TransportOptions } from "./transport.ts";
export { createTransport } from "./transport.ts";
export type { UserClient, UserClientOptions } from "./user-client.ts";
export { createUserClient } from "./user-client.ts";
export type { WeightedRoundRobinOptions } from "./weighted-round-robin.ts";
