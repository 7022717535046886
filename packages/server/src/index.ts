export type { ServerConfig } from "./config.ts";
export { loadConfig } from "./config.ts";
export type { RunningServer, ServerOptions } from "./server.ts";
export { startServer } from "./server.ts";
