export type { TokenSource } from "./bearer-token.ts";
export { createBearerTokenInterceptor } from "./bearer-token.ts";
export type { OrderClient, OrderClientOptions } from "./order-client.ts";
export { createOrderClient } from "./order-client.ts";
export type { Protocol, TransportOptions } from "./transport.ts";
export { createTransport } from "./transport.ts";
export type { UserClient, UserClientOptions } from "./user-client.ts";
export { createUserClient } from "./user-client.ts";
