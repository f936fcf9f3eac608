/**
 * What the CXone client retries, and how long it waits in between. Pure
 * functions (randomness injected), so the whole policy is unit-tested
 * without sleeping.
 *
 * Three kinds of failure are counted separately, because they mean
 * different things:
 * - `fault`: a 5xx, a reset, a timeout, a refused connection. Capped
 *   exponential backoff with full jitter, a small number of attempts.
 * - `rate_limited`: a 429. Not a fault of the request; the server says when
 *   to come back (`Retry-After` wins). Allowed many more times, because in
 *   a shift-change burst several callers may each be told to wait a few
 *   times.
 * - `token`: a 401 `invalid_token` (expiry or rotation). The first replay
 *   goes out at once with a new token; a replay refused again backs off,
 *   since rotation can be frequent.
 * Everything else (other 4xx, unknown errors) is never retried.
 */
import { CxrecError, isRetryable } from '../errors.js';

export type RetryKind = 'fault' | 'rate_limited' | 'token';

export interface RetryPolicyOptions {
  /** Base of the exponential backoff (CXREC_BACKOFF_SECONDS). @default 2000 */
  baseMs?: number;
  /** No computed backoff exceeds this (`Retry-After` may). @default 60000 */
  capMs?: number;
  /** Attempts of one request when it meets faults (5xx, resets, timeouts). @default 6 */
  maxAttempts?: number;
  /** How many 429s one request may meet before it gives up. @default 30 */
  maxRateLimited?: number;
  /** How many times one request may be replayed with a renewed token. @default 6 */
  maxTokenReplays?: number;
  /** A number in [0, 1); injected by tests. @default Math.random */
  random?: () => number;
}

export type ResolvedRetryPolicy = Required<RetryPolicyOptions>;

export function resolveRetryPolicy(options: RetryPolicyOptions = {}): ResolvedRetryPolicy {
  const policy: ResolvedRetryPolicy = {
    baseMs: options.baseMs ?? 2000,
    capMs: options.capMs ?? 60_000,
    maxAttempts: options.maxAttempts ?? 6,
    maxRateLimited: options.maxRateLimited ?? 30,
    maxTokenReplays: options.maxTokenReplays ?? 6,
    random: options.random ?? Math.random,
  };
  if (!(policy.baseMs >= 0) || !(policy.capMs >= policy.baseMs)) {
    throw new CxrecError('config_invalid', 'backoff needs 0 ≤ base ≤ cap', {
      context: { baseMs: policy.baseMs, capMs: policy.capMs },
    });
  }
  if (policy.maxAttempts < 1 || policy.maxRateLimited < 0 || policy.maxTokenReplays < 0) {
    throw new CxrecError('config_invalid', 'retry limits must be positive');
  }
  return policy;
}

/**
 * Full-jitter exponential backoff: a uniform draw from
 * `[0, min(cap, base · 2^(attempt-1)))`. Full jitter (rather than
 * "equal" jitter) spreads many callers that failed together — the usual
 * case behind a shared rate limit — across the whole interval.
 *
 * @param attempt 1 for the wait after the first failure.
 */
export function backoffDelayMs(
  attempt: number,
  policy: Pick<ResolvedRetryPolicy, 'baseMs' | 'capMs' | 'random'>,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30); // 2^30 · base is past any cap; avoids Infinity
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
  return Math.floor(policy.random() * ceiling);
}

/**
 * A `Retry-After` header in milliseconds: delta-seconds (CXone sends whole
 * seconds) or an HTTP-date. `undefined` when absent or unparseable.
 */
/**
 * The longest `Retry-After` obeyed: five minutes. A server (or a proxy in
 * front of it) that says "come back in a day" would otherwise stall every
 * worker of the tenant for a day; after the cap the limiter's slow start
 * probes carefully, and a still-closed tenant answers 429 again.
 */
export const maxRetryAfterMs = 5 * 60_000;

/** `Retry-After` in ms (seconds or an HTTP-date), capped at `maxRetryAfterMs`; undefined when absent or unreadable. */
export function parseRetryAfterMs(
  header: string | string[] | undefined,
  nowEpochMs: number = Date.now(),
): number | undefined {
  const ms = uncappedRetryAfterMs(header, nowEpochMs);
  return ms === undefined ? undefined : Math.min(ms, maxRetryAfterMs);
}

/** Whether a `Retry-After` asked for more than `maxRetryAfterMs` (to be logged). */
export function retryAfterCapped(
  header: string | string[] | undefined,
  nowEpochMs: number = Date.now(),
): boolean {
  return (uncappedRetryAfterMs(header, nowEpochMs) ?? 0) > maxRetryAfterMs;
}

function uncappedRetryAfterMs(header: string | string[] | undefined, nowEpochMs: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  // An HTTP-date always names a day or month; this keeps `Date.parse` from
  // reading "-1" or "2024" as a year.
  const date = /[a-z]/i.test(trimmed) ? Date.parse(trimmed) : NaN;
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowEpochMs);
}

/** Which retry budget an error draws on, or `undefined` when it is not retried at all. */
export function retryKind(err: unknown): RetryKind | undefined {
  if (err instanceof CxrecError) {
    if (err.code === 'rate_limited') return 'rate_limited';
    if (err.code === 'token_invalid') return 'token';
  }
  return isRetryable(err) ? 'fault' : undefined;
}

export type RetryDecision = { retry: true; kind: RetryKind; delayMs: number } | { retry: false };

/** How many failures of each kind one request has met so far (including this one). */
export type RetryCounts = Readonly<Record<RetryKind, number>>;

/**
 * Whether to try again after `err`, and after how long.
 *
 * @param counts failures so far, this one included.
 */
export function decideRetry(err: unknown, counts: RetryCounts, policy: ResolvedRetryPolicy): RetryDecision {
  const kind = retryKind(err);
  if (kind === undefined) return { retry: false };
  const n = counts[kind];
  const retryAfterMs = err instanceof CxrecError ? err.retryAfterMs : undefined;
  switch (kind) {
    case 'fault':
      if (n >= policy.maxAttempts) return { retry: false };
      return { retry: true, kind, delayMs: retryAfterMs ?? backoffDelayMs(n, policy) };
    case 'rate_limited':
      if (n > policy.maxRateLimited) return { retry: false };
      // Retry-After wins; without one, back off as for a fault, from at least 1 s
      // (the smallest Retry-After CXone sends).
      return { retry: true, kind, delayMs: retryAfterMs ?? Math.max(1000, backoffDelayMs(n, policy)) };
    case 'token':
      if (n > policy.maxTokenReplays) return { retry: false };
      // The first refusal is an ordinary rotation: replay at once. A replay
      // refused again means rotation is racing us; back off.
      return { retry: true, kind, delayMs: n <= 1 ? 0 : backoffDelayMs(n - 1, policy) };
  }
}
