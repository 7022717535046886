export { loadConfig } from "./config.ts";
export type { ServerConfig } from "./config.ts";
export { startServer } from "./server.ts";
export type { RunningServer, ServerOptions } from "./server.ts";
