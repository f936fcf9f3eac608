/**
 * Opens what `CXREC_STATE` names: the ledger, and the tenant's rate
 * budgets kept beside it. Processes that share a PostgreSQL ledger share
 * its budgets too (CXREC_RATE_LIMIT is for the whole tenant); a SQLite
 * ledger means one process at a time, whose in-process limiters are enough
 * as long as they remember what the previous process spent (a process
 * restarted right after a crash must count the dead one's requests still
 * in the tenant's window: `sqlite-rate-log.ts`); `:memory:` has no
 * previous process. An explicit kind → backend map, picked from the target
 * `config.ts` parsed once; nothing registers itself on import.
 *
 * The CLI opens the limiters (with the CXone client) and the ledger at
 * different moments, hence `openLedger` and `openRateLimiters` beside
 * `openState`; all three go through the one map.
 */
import {
  defaultMarginMs,
  SlidingWindowRateLimiter,
  type RateBudget,
  type RateLimiter,
} from '../cxone/rate-limiter.js';
import type { Clock } from '../cxone/clock.js';
import type { StateTarget } from '../config.js';
import type { Logger } from '../log.js';
import type { Ledger } from './ledger.js';
import { openPostgresLedger } from './postgres.js';
import { openPostgresRateLimiters } from './postgres-rate-limiter.js';
import { limitersByName, type OpenedRateLimiters } from './rate-budgets.js';
import { openSqliteLedger } from './sqlite.js';
import { openSqliteRateLimiters } from './sqlite-rate-log.js';

export interface OpenRateLimitersOptions {
  /**
   * PostgreSQL only: names the tenant whose budgets are shared. Processes
   * exporting from different tenants into one database need different
   * keys. @default 'default'
   */
  tenantKey?: string;
  /** Added to each budget's window (see `cxone/rate-limiter.ts`). @default 50 */
  marginMs?: number;
  /** PostgreSQL only: an unreleased permit (dead process) counts as finished after this. @default 120000 */
  maxInFlightMs?: number;
  /** PostgreSQL only: how often a caller held back by another process's slow start asks again. @default 500 */
  rampPollMs?: number;
  /** Failures that do not fail a request (PostgreSQL: release, pause; SQLite: writing the log). @default none */
  logger?: Pick<Logger, 'warn'>;
  /** The limiters' timers, injected by tests. @default systemClock */
  clock?: Clock;
}

export interface OpenStateOptions<Name extends string> extends OpenRateLimitersOptions {
  budgets: readonly RateBudget<Name>[];
}

export interface OpenedState<Name extends string> {
  ledger: Ledger;
  limiters: Readonly<Record<Name, RateLimiter>>;
  /** Closes the limiters, then the ledger. */
  close(): Promise<void>;
}

interface StateBackend<T extends StateTarget> {
  ledger(target: T): Promise<Ledger>;
  limiters<Name extends string>(
    target: T,
    budgets: readonly RateBudget<Name>[],
    options: OpenRateLimitersOptions,
  ): Promise<OpenedRateLimiters<Name>>;
}

type Backends = { [K in StateTarget['kind']]: StateBackend<Extract<StateTarget, { kind: K }>> };

const backends: Backends = {
  sqlite: {
    ledger: (target) => openSqliteLedger(target.path),
    limiters: (target, budgets, options) =>
      Promise.resolve(
        openSqliteRateLimiters(target.path, budgets, {
          marginMs: options.marginMs,
          logger: options.logger,
          clock: options.clock,
        }),
      ),
  },
  memory: {
    ledger: () => openSqliteLedger(':memory:'),
    limiters: (_target, budgets, options) =>
      Promise.resolve({
        limiters: limitersByName(
          budgets,
          (budget) =>
            new SlidingWindowRateLimiter({
              limit: budget.limit,
              windowMs: budget.windowMs,
              marginMs: options.marginMs ?? defaultMarginMs,
              ...(options.clock ? { clock: options.clock } : {}),
            }),
        ),
        close: () => Promise.resolve(),
      }),
  },
  postgres: {
    ledger: (target) => openPostgresLedger(target.url),
    limiters: (target, budgets, options) => openPostgresRateLimiters(target.url, budgets, options),
  },
};

function backend<T extends StateTarget>(target: T): StateBackend<T> {
  return backends[target.kind] as StateBackend<T>;
}

/** Opens the ledger `target` names and migrates it. */
export function openLedger(target: StateTarget): Promise<Ledger> {
  return backend(target).ledger(target);
}

/**
 * One limiter per budget for `target`: shared through the database for
 * PostgreSQL; for a SQLite file in-process, seeded from and logging to the
 * ledger file (whose migrations it applies if the ledger has not yet);
 * plain in-process for `:memory:`.
 */
export async function openRateLimiters<Name extends string>(
  target: StateTarget,
  budgets: readonly RateBudget<Name>[],
  options: OpenRateLimitersOptions = {},
): Promise<OpenedRateLimiters<Name>> {
  return backend(target).limiters(target, budgets, options);
}

/** The ledger and the budgets together. */
export async function openState<Name extends string>(
  target: StateTarget,
  options: OpenStateOptions<Name>,
): Promise<OpenedState<Name>> {
  const { budgets, ...limiterOptions } = options;
  const opened = await openRateLimiters(target, budgets, limiterOptions);
  let ledger: Ledger;
  try {
    ledger = await openLedger(target);
  } catch (err) {
    await opened.close();
    throw err;
  }
  return {
    ledger,
    limiters: opened.limiters,
    async close() {
      await opened.close();
      await ledger.close();
    },
  };
}
