export type { ConsoleHandlerOptions } from "./console-handler.ts";
export { createConsoleHandler } from "./console-handler.ts";
export type { CorsOptions } from "./cors-handler.ts";
export { createCorsHandler } from "./cors-handler.ts";
export type { HttpHandler } from "./http-handler.ts";
