export type { ErrorLogger, RecoveryOptions } from "./recovery.ts";
export { createRecoveryInterceptor } from "./recovery.ts";
