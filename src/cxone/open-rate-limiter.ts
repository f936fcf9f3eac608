/**
 * Picks the tenant's rate limiter from `CXREC_STATE`, as `openLedger` picks
 * the ledger: processes that share a PostgreSQL ledger share its budget
 * too (CXREC_RATE_LIMIT is for the whole tenant), while a SQLite ledger
 * means one process, whose in-process limiter is enough. An explicit
 * scheme → factory map; nothing registers itself on import.
 */
import type { Logger } from '../log.js';
import { PostgresRateLimiter } from './postgres-rate-limiter.js';
import { SlidingWindowRateLimiter, type RateLimiter } from './rate-limiter.js';

/** A limiter that may hold a connection: call `close` at shutdown when present. */
export interface OpenedRateLimiter extends RateLimiter {
  close?(): Promise<void>;
}

export interface OpenRateLimiterOptions {
  /** The server's window; `limitPerMinute` is per this window. @default 60000 */
  windowMs?: number;
  /** Added to the window (see `rate-limiter.ts`). @default 50 */
  marginMs?: number;
  /** PostgreSQL only: an unreleased permit (dead process) counts as finished after this. @default 120000 */
  maxInFlightMs?: number;
  /**
   * PostgreSQL only: names the shared budget. Processes exporting from
   * different tenants into one database need different keys. @default 'default'
   */
  tenantKey?: string;
  /** PostgreSQL only: failures that do not fail a request (release, pause). @default none */
  logger?: Pick<Logger, 'warn'>;
}

type LimiterFactory = (
  state: string,
  limit: number,
  options: OpenRateLimiterOptions,
) => Promise<OpenedRateLimiter>;

async function openPostgres(
  state: string,
  limit: number,
  options: OpenRateLimiterOptions,
): Promise<OpenedRateLimiter> {
  const limiter = new PostgresRateLimiter({ database: state, limit, ...options });
  try {
    // Fail at start-up on a bad URL or server, not at the first request.
    await limiter.ready();
  } catch (err) {
    await limiter.close();
    throw err;
  }
  return limiter;
}

/** URL schemes whose ledger several processes share, and so the budget. */
const byScheme: Readonly<Record<string, LimiterFactory>> = {
  postgres: openPostgres,
  postgresql: openPostgres,
};

/**
 * The limiter for `CXREC_STATE` (`state`) and `CXREC_RATE_LIMIT`
 * (`limitPerMinute`): shared through PostgreSQL for a `postgres://` or
 * `postgresql://` URL, in-process for anything else (a SQLite path).
 */
export function openRateLimiter(
  state: string,
  limitPerMinute: number,
  options: OpenRateLimiterOptions = {},
): Promise<OpenedRateLimiter> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(state)?.[1]?.toLowerCase();
  const factory = scheme === undefined ? undefined : byScheme[scheme];
  if (factory) return factory(state, limitPerMinute, options);
  try {
    const local: OpenedRateLimiter = new SlidingWindowRateLimiter({
      limit: limitPerMinute,
      ...(options.windowMs === undefined ? {} : { windowMs: options.windowMs }),
      ...(options.marginMs === undefined ? {} : { marginMs: options.marginMs }),
    });
    return Promise.resolve(local);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
