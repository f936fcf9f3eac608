/**
 * Transient faults that a retry absorbed, counted per kind for the whole
 * process. They are logged at `debug` only: on a terminal the progress line
 * and the summary show how many there were, and `/metrics` of `run` too.
 * A fault that retries could not absorb still reaches `warn` where it ends
 * a recording or stops the command.
 */

export type RetryKind =
  /** An API call retried (5xx, reset, timeout, 401 token replay, 429). */
  | 'api'
  /** The token endpoint refused the credentials once, then was asked again. */
  | 'credentials'
  /** A media transfer broke and resumed with Range. */
  | 'media'
  /** A job deferred after a transient fault, to be tried again later. */
  | 'job'
  /** A listing, a re-check or a ledger read retried as a whole. */
  | 'listing'
  /** A ledger or lease write retried. */
  | 'ledger';

const counts = new Map<RetryKind, number>();

/** Counts one absorbed fault. */
export function noteRetry(kind: RetryKind): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
}

/** Every retry so far, of every kind. */
export function retriesSoFar(): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}

/** A copy: `{api: 12, media: 3}`; kinds never seen are absent. */
export function retriesByKind(): Partial<Record<RetryKind, number>> {
  return Object.fromEntries(counts);
}
