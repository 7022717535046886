export type { AuditOptions } from "./audit.ts";
export { createAuditInterceptor } from "./audit.ts";
export type {
  AuditEntry,
  AuditLog,
  AuditLogOptions,
  AuditLogStats,
  AuditTargets,
} from "./audit-log.ts";
export { createAuditLog } from "./audit-log.ts";
export type { AuditSummaryOptions } from "./audit-summary.ts";
export type { AuthenticationInterceptor, AuthenticationOptions } from "./authentication.ts";
export { createAuthenticationInterceptor } from "./authentication.ts";
export type { AuthorizationOptions } from "./authorization.ts";
export { createAuthorizationInterceptor } from "./authorization.ts";
export type { BoundedErrorsOptions } from "./bounded-errors.ts";
export { createBoundedErrorsInterceptor } from "./bounded-errors.ts";
export {
  bounded,
  boundedError,
  maxErrorMessageBytes,
  maxQuotedChars,
  quote,
} from "./bounded-text.ts";
export type { CallProgress } from "./call-progress.ts";
export { callProgressKey } from "./call-progress.ts";
export type { CidrList } from "./cidr.ts";
export { cidrProblem, createCidrList } from "./cidr.ts";
export type {
  ClientAddressOptions,
  ClientAddressResolver,
  ForwardedHeader,
  IncomingHeaders,
} from "./client-address.ts";
export { createClientAddressResolver } from "./client-address.ts";
export type { Principal } from "./context.ts";
export { deadlineKey, peerKey, principalKey, remainingTimeMs, requestIdKey } from "./context.ts";
export type { DeadlineOptions } from "./deadline.ts";
export {
  createDeadlineInterceptor,
  deadlineDefaults,
  defaultDeadlineExpired,
} from "./deadline.ts";
export type { Hs256Verifier, Hs256VerifyOptions } from "./hs256.ts";
export { createHs256Verifier, signHs256 } from "./hs256.ts";
export type { Hs256Key, Hs256Keyring, Hs256Keys } from "./hs256-keyring.ts";
export { createHs256Keyring, hs256KeyId, maxHs256Keys } from "./hs256-keyring.ts";
export type { IpAccess, IpAccessOptions, IpLists, IpRules } from "./ip-access.ts";
export { createIpAccess } from "./ip-access.ts";
export type { LoadReporter, LoadReporterOptions, LoadReportSample } from "./load-report.ts";
export { createLoadReporter, loadReportTrailer } from "./load-report.ts";
export type { LoadSample, LoadSampler, LoadSamplerOptions } from "./load-sampler.ts";
export { createLoadSampler } from "./load-sampler.ts";
export type { LoadShedder, LoadShedderOptions, ShedReason, ShedState } from "./load-shedder.ts";
export { createLoadShedder, shedReasons } from "./load-shedder.ts";
export type { CallLogger, CodeName, LoggingOptions, LogLevel } from "./logging.ts";
export { createLoggingInterceptor, defaultLevelFor } from "./logging.ts";
export type {
  MemoryLevel,
  MemoryLimit,
  MemoryWatchdog,
  MemoryWatchdogOptions,
} from "./memory-watchdog.ts";
export { createMemoryWatchdog } from "./memory-watchdog.ts";
export type { OidcVerifier, OidcVerifierOptions } from "./oidc-verifier.ts";
export { createOidcVerifier } from "./oidc-verifier.ts";
export type { OrcaLoadReport } from "./orca-load-report.ts";
export { encodeOrcaLoadReport } from "./orca-load-report.ts";
export type { AccessPolicy, ExtraPolicies, RestrictedField } from "./policy.ts";
export { createPolicyResolver } from "./policy.ts";
export type {
  Limit,
  RateLimiter,
  RateLimitKey,
  RateLimitOptions,
  RateLimits,
} from "./rate-limit.ts";
export { createRateLimiter, createRateLimitInterceptor } from "./rate-limit.ts";
export type { ErrorLogger, RecoveryOptions } from "./recovery.ts";
export { createRecoveryInterceptor } from "./recovery.ts";
export type {
  RefusalCounts,
  RefusalSummary,
  RefusalSummaryOptions,
} from "./refusal-summary.ts";
export { createRefusalSummary } from "./refusal-summary.ts";
export type { RequestIdOptions } from "./request-id.ts";
export { createRequestIdInterceptor } from "./request-id.ts";
export { resourceExhausted } from "./resource-exhausted.ts";
export type {
  SharedBuckets,
  SharedBucketsOptions,
  SharedVerdict,
  TokenSource,
} from "./shared-buckets.ts";
export { createSharedBuckets } from "./shared-buckets.ts";
export type { StreamLimitOptions } from "./stream-limit.ts";
export { createStreamLimitInterceptor, streamLimitDefaults } from "./stream-limit.ts";
export { mapError } from "./streams.ts";
export type { ValidationOptions } from "./validation.ts";
export { createValidationInterceptor, validateMessage } from "./validation.ts";
