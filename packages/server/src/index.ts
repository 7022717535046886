export { certsCommand, grantCommand, tokenCommand, UsageError, usage } from "./commands.ts";
export type { ServerConfig, Settings } from "./config.ts";
export { ConfigError, loadConfig, readSettings } from "./config.ts";
export { serve } from "./serve.ts";
export type { RunningServer, ServerOptions } from "./server.ts";
export { startServer } from "./server.ts";
