/**
 * How long the whole budget pauses after a 429 of the platform, which
 * never says when to come back (no `Retry-After`, contract §4–5).
 */
import type { ResolvedRetryPolicy } from '../retry-policy.js';

/**
 * The pause after the n-th 429 one call met: the backoff base doubled per
 * refusal, at least 1 s, at most the cap. No jitter: the pause holds the
 * whole budget (every caller waits behind it), so there is no herd of
 * callers to spread; the limiter's slow start after the pause does that.
 *
 * @param refusal 1 for the first 429.
 */
export function pauseAfterRefusalMs(
  refusal: number,
  policy: Pick<ResolvedRetryPolicy, 'baseMs' | 'capMs'>,
): number {
  const exponent = Math.min(Math.max(refusal - 1, 0), 30);
  return Math.min(policy.capMs, Math.max(1000, policy.baseMs * 2 ** exponent));
}
