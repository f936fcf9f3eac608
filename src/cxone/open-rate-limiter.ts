/**
 * Picks the tenant's rate limiter from `CXREC_STATE`, as `openLedger` picks
 * the ledger: processes that share a PostgreSQL ledger share its budget
 * too (CXREC_RATE_LIMIT is for the whole tenant), while a SQLite ledger
 * means one process at a time, whose in-process limiter is enough as long
 * as it remembers what the previous process spent: a process restarted
 * right after a crash must count the dead one's requests still in the
 * tenant's window (`sqlite-rate-log.ts`). `:memory:` has no previous
 * process. An explicit scheme → factory map; nothing registers itself on
 * import.
 */
import { CxrecError } from '../errors.js';
import type { Logger } from '../log.js';
import { PostgresRateLimiter } from './postgres-rate-limiter.js';
import { SlidingWindowRateLimiter, type RateLimiter } from './rate-limiter.js';
import { openSqliteRateLimiter } from './sqlite-rate-log.js';

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
  /** Failures that do not fail a request (PostgreSQL: release, pause; SQLite: writing the log). @default none */
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
 * `postgresql://` URL; for a SQLite path in-process, seeded from and
 * logging to the ledger file (whose migrations it applies if the ledger
 * has not yet); plain in-process for `:memory:`.
 */
export function openRateLimiter(
  state: string,
  limitPerMinute: number,
  options: OpenRateLimiterOptions = {},
): Promise<OpenedRateLimiter> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(state)?.[1]?.toLowerCase();
  const factory = scheme === undefined ? undefined : byScheme[scheme];
  if (factory) return factory(state, limitPerMinute, options);
  if (scheme !== undefined) {
    // As openLedger says: a typo'd URL would otherwise become a SQLite file named like a URL.
    return Promise.reject(
      new CxrecError(
        'config_invalid',
        `CXREC_STATE uses the unknown scheme ${scheme}://; give a SQLite file path or a postgres:// URL`,
      ),
    );
  }
  try {
    const local: OpenedRateLimiter =
      state === ':memory:'
        ? new SlidingWindowRateLimiter({
            limit: limitPerMinute,
            ...(options.windowMs === undefined ? {} : { windowMs: options.windowMs }),
            ...(options.marginMs === undefined ? {} : { marginMs: options.marginMs }),
          })
        : openSqliteRateLimiter(state, limitPerMinute, {
            windowMs: options.windowMs,
            marginMs: options.marginMs,
            logger: options.logger,
          });
    return Promise.resolve(local);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
