/** The CXone client: what the rest of cxrec imports from `src/cxone/`. */
export { CxoneClient } from './client.js';
export type { AccessReport, CallOptions, CxoneClientOptions, SearchPage, SearchQuery } from './client.js';
export { systemClock, sleep } from './clock.js';
export type { Clock } from './clock.js';
export { assertUrlAllowed, createHttpAgent } from './http.js';
export type { HttpAgentOptions } from './http.js';
export { SlidingWindowRateLimiter } from './rate-limiter.js';
export type {
  RateLimiter,
  RateLimiterStats,
  RatePermit,
  SlidingWindowRateLimiterOptions,
} from './rate-limiter.js';
export {
  backoffDelayMs,
  decideRetry,
  parseRetryAfterMs,
  resolveRetryPolicy,
  retryKind,
} from './retry-policy.js';
export type { RetryDecision, RetryKind, RetryPolicyOptions } from './retry-policy.js';
export { ApiStats } from './stats.js';
export type { ApiStatsSnapshot, Endpoint } from './stats.js';
export { requiredScopes, TokenProvider } from './token-provider.js';
export type { Grant } from './token-provider.js';
export { channels, recordingStatuses } from './wire.js';
export type { Channel, DownloadUrl, Recording, RecordingDetail, RecordingStatus } from './wire.js';
