export { createRecoveryInterceptor } from "./recovery.ts";
export type { ErrorLogger, RecoveryOptions } from "./recovery.ts";
