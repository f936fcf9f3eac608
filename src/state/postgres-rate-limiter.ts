/**
 * A rate budget of the tenant shared by every cxrec process (on one
 * machine or many) that uses the same PostgreSQL database, tenant key and
 * budget name: the `RateLimiter` of `CXREC_STATE=postgres://…`.
 *
 * ## The algorithm (the SQL is in `migrations/postgres/003_rate_limit.sql`, 004 for the pace)
 *
 * Each request holds a row in `rate_limit_slots` from `acquire` until
 * `windowMs + marginMs` after `release` (`frees_at`). A grant is one call
 * of `cxrec_rate_acquire`, which locks the tenant's `rate_limit_buckets`
 * row (`SELECT … FOR UPDATE`, so grants are serialized per tenant key),
 * deletes the slots whose `frees_at` passed, and inserts new ones while
 * fewer than `limit` remain and no pause runs. `release` is one call of
 * `cxrec_rate_release`, which sets `done_at` and `frees_at = done_at + hold`.
 *
 * ## Why it is safe
 *
 * The argument of the in-process limiter (see `cxone/rate-limiter.ts`) carries
 * over unchanged, with the database's clock in place of ours: `done_at`
 * is taken on the database after we saw the answer (so after the request
 * arrived at CXone), and a grant is taken on the database at least
 * `windowMs + marginMs` later and before we send. So every request arrives
 * at CXone at least a full window after the arrival of any request whose
 * slot it reuses, whatever the latency to CXone or to the database.
 * Every timestamp is `clock_timestamp()` of the one database server, and
 * only such timestamps are compared: the machines' clocks never matter
 * (the margin covers the database clock running a little fast or slow
 * against CXone's over one window).
 *
 * A permit never released (its process died, or the release failed) is
 * taken as finished at `acquired_at + maxInFlightMs`, so it frees a full
 * hold after that. This is safe as long as no request runs longer than
 * `maxInFlightMs`: keep it above the HTTP client's timeouts. A request
 * released after its deadline is counted again from its release, so even
 * then only the stretch between deadline + hold and the release is exposed.
 *
 * ## Round trips
 *
 * One per `acquire` batch and one per `release`. Callers of one process
 * queue in FIFO order in front of the database; the head asks for as many
 * slots as there are callers waiting, and when the budget is full the
 * database says when the next slot can free (the oldest `frees_at`; a slot
 * still in flight cannot free before now + hold), so the process sleeps
 * until then instead of polling. A pause (`pauseFor`) and the slow start
 * after it (one request in flight across all processes, doubling with
 * each one answered) are shared through the bucket row, and so is a pace
 * lowered after a 429 without Retry-After: it lasts while the budget is in
 * use, and goes back to the full limit once nobody has sent for a whole
 * window after the last pause and the last lowering (a fleet started the
 * next day must not inherit it; "for the rest of the process" has no
 * meaning across processes).
 *
 * ## Keys
 *
 * The bucket and slot rows of a budget are keyed `tenantKey#budget`; the
 * `api` budget keeps the bare tenant key it had before budgets were named,
 * so the slots of processes stopped for an upgrade still count.
 *
 * ## The schema
 *
 * The tables and functions are the ledger's migration 003: one migration
 * history per database, applied by whichever component connects first
 * (`migratePostgres`, under the ledger's advisory lock), so `status` and
 * operators see one schema and upgrades need no second mechanism.
 */
import type pg from 'pg';

import { abortedError, systemClock, type Clock } from '../cxone/clock.js';
import {
  apiBudgetName,
  checkRateLimitSettings,
  defaultMarginMs,
  defaultWindowMs,
  paceFactor,
  type PauseOptions,
  type RateBudget,
  type RateLimiter,
  type RateLimiterStats,
  type RatePermit,
} from '../cxone/rate-limiter.js';
import { WaiterQueue } from '../cxone/waiter-queue.js';
import { CxrecError } from '../errors.js';
import type { Logger } from '../log.js';
import { redactUrlPassword } from '../redact.js';
import { isTransient, migratePostgres, openPostgresPool } from './postgres.js';
import { limitersByName, type OpenedRateLimiters } from './rate-budgets.js';

export interface PostgresRateLimiterOptions {
  /**
   * The database: a `pg.Pool` the caller owns (it stays open after
   * `close()`), or a connection string, for which the limiter opens a small
   * pool of its own and ends it on `close()`.
   */
  database: pg.Pool | string;
  /** Names a `pg.Pool` database in messages (never with its password). @default 'postgres (shared pool)' */
  location?: string;
  /** Requests allowed per window for the whole tenant (CXREC_RATE_LIMIT for a 60 s window); every process must use the same. */
  limit: number;
  /** The server's window. @default 60000 */
  windowMs?: number;
  /**
   * Added to the window, for the database clock drifting against CXone's
   * over one window, and timer rounding. @default 50
   */
  marginMs?: number;
  /**
   * A permit not released by then (its process died) is taken as finished
   * and frees a window later. Must exceed the longest request: the HTTP
   * client's connect + headers + body timeouts. @default 120000
   */
  maxInFlightMs?: number;
  /** Names the tenant: processes with the same key share its budgets. @default 'default' */
  tenantKey?: string;
  /** Which of the tenant's budgets (see `RateBudget`). @default 'api' */
  budget?: string;
  /**
   * How often a caller held back only by the slow start after a pause
   * (other processes' requests in flight) asks again: releases elsewhere
   * lift it at times nobody can predict. @default 500
   */
  rampPollMs?: number;
  /** Where failures that do not fail a request (release, pause) are reported. @default none */
  logger?: Pick<Logger, 'warn'> | undefined;
  /** The sleeps between acquire calls; the window itself is on the database's clock. @default systemClock */
  clock?: Clock;
}

/** Counters for metrics and tests; `inFlight` and `waiting` are this process's only. */
export interface PostgresRateLimiterStats extends RateLimiterStats {
  /** Calls of `cxrec_rate_acquire`: stays near grants + waits, however many callers wait. */
  acquireCalls: number;
  /** Releases and pauses the database did not take (the slot then expires at its deadline). */
  failures: number;
}

interface AcquireRow {
  /** int8 arrive as strings; they stay opaque ids. */
  slot_ids: string[];
  wait_ms: number;
  blocked_by: 'pause' | 'full' | 'ramp' | null;
}

/** The resolved settings, validated. Exported for unit tests. */
export interface RateLimitSettings {
  limit: number;
  holdMs: number;
  maxInFlightMs: number;
  tenantKey: string;
  budget: string;
  /** The rows' key: the tenant's, and the budget's name unless it is `api`. */
  key: string;
  rampPollMs: number;
}

/** Validates the options and works out the hold (window + margin) and the key. Pure. */
export function rateLimitSettings(
  options: Omit<PostgresRateLimiterOptions, 'database' | 'location' | 'logger' | 'clock'>,
): RateLimitSettings {
  const windowMs = options.windowMs ?? defaultWindowMs;
  const marginMs = options.marginMs ?? defaultMarginMs;
  const maxInFlightMs = options.maxInFlightMs ?? 120_000;
  const tenantKey = options.tenantKey ?? 'default';
  const budget = options.budget ?? apiBudgetName;
  const rampPollMs = options.rampPollMs ?? 500;
  checkRateLimitSettings(options.limit, windowMs, marginMs);
  if (!(maxInFlightMs > 0) || !(rampPollMs > 0)) {
    throw new CxrecError('config_invalid', 'the rate limit’s max in-flight time and ramp poll must be > 0', {
      context: { maxInFlightMs, rampPollMs },
    });
  }
  if (tenantKey.length === 0 || budget.length === 0) {
    throw new CxrecError('config_invalid', 'the rate-limit tenant key and budget name must not be empty');
  }
  const key = budget === apiBudgetName ? tenantKey : `${tenantKey}#${budget}`;
  return {
    limit: options.limit,
    holdMs: windowMs + marginMs,
    maxInFlightMs,
    tenantKey,
    budget,
    key,
    rampPollMs,
  };
}

export class PostgresRateLimiter implements RateLimiter {
  readonly location: string;
  readonly #settings: RateLimitSettings;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #logger: Pick<Logger, 'warn'> | undefined;
  readonly #clock: Clock;
  #ready: Promise<void> | undefined;
  readonly #waiters = new WaiterQueue<RatePermit>({
    what: 'waiting for the rate limit',
    // Nobody left to sleep for: let the pump end now rather than at its timer.
    onAbort: () => {
      if (this.#waiters.size === 0) this.#wake?.();
    },
  });
  #pumpActive = false;
  /** The last pump started: `close` waits for it before ending the pool. */
  #pumping: Promise<void> | undefined;
  /** Slots handed back after their caller gave up: `close` waits for them too. */
  readonly #returning = new Set<Promise<void>>();
  #poolEnded = false;
  /** Ends the pump's current sleep early (a slot was returned, the queue emptied, close). */
  #wake: (() => void) | undefined;
  /** Why the last acquire call granted fewer than asked: a release here only helps for `ramp`. */
  #blockedBy: AcquireRow['blocked_by'] = null;
  /** `clock.now()` before which this process sends nothing, in case the shared pause could not be written. */
  #localPauseUntil = -Infinity;
  #inFlight = 0;
  #closed = false;
  readonly #counters = { granted: 0, pauses: 0, pausedMs: 0, acquireCalls: 0, failures: 0 };

  constructor(options: PostgresRateLimiterOptions) {
    this.#settings = rateLimitSettings(options);
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    if (typeof options.database === 'string') {
      this.location = redactUrlPassword(options.database);
      // Two connections: one acquire call and one release or pause at a time are all a process needs.
      this.#pool = openPostgresPool(options.database, 2);
      this.#ownsPool = true;
    } else {
      this.location = options.location ?? 'postgres (shared pool)';
      this.#pool = options.database;
      this.#ownsPool = false;
    }
  }

  /** Migrates the schema if needed; `acquire` does it on first use, call it to fail early on a bad URL. */
  ready(): Promise<void> {
    this.#ready ??= migratePostgres(this.#pool, this.location).catch((err: unknown) => {
      this.#ready = undefined; // a later call may find the server up
      throw this.#error('schema setup', err);
    });
    return this.#ready;
  }

  acquire(options: { signal?: AbortSignal | undefined } = {}): Promise<RatePermit> {
    const { signal } = options;
    if (this.#closed) return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(abortedError(signal, 'waiting for the rate limit'));
    const granted = this.#waiters.wait(signal);
    this.#kick();
    return granted;
  }

  async pauseFor(ms: number, options: PauseOptions = {}): Promise<void> {
    const wait = Math.max(0, ms);
    const s = this.#settings;
    this.#counters.pauses++;
    this.#counters.pausedMs += wait;
    // Local too: if the database cannot take the pause, at least this process keeps it.
    this.#localPauseUntil = Math.max(this.#localPauseUntil, this.#clock.now() + wait);
    try {
      await this.ready();
      await this.#pool.query('SELECT cxrec_rate_pause($1, $2)', [s.key, wait]);
      if (options.lowerPace) {
        await this.#pool.query('SELECT cxrec_rate_lower_pace($1, $2, $3)', [s.key, s.holdMs, paceFactor]);
      }
    } catch (err) {
      // Not thrown: the caller is handling a 429 and must still release its
      // permit; other processes will meet the 429 themselves and pause.
      this.#failed('pause', err);
    }
  }

  stats(): PostgresRateLimiterStats {
    return {
      granted: this.#counters.granted,
      waiting: this.#waiters.size,
      inFlight: this.#inFlight,
      pauses: this.#counters.pauses,
      pausedMs: this.#counters.pausedMs,
      acquireCalls: this.#counters.acquireCalls,
      failures: this.#counters.failures,
    };
  }

  /**
   * Rejects every waiting caller and, when the limiter opened its own pool,
   * ends it. Permits still out are not released: their slots free at their
   * deadline, as a dead process's would.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.rejectAll(this.#closedError());
    this.#wake?.();
    await this.#pumping;
    await Promise.all(this.#returning);
    if (this.#ownsPool) {
      this.#poolEnded = true;
      await this.#pool.end();
    }
  }

  /** One pump per process: asks the database for as many slots as callers wait, then sleeps until one can free. */
  async #pump(): Promise<void> {
    try {
      while (this.#waiters.size > 0 && !this.#closed) {
        const localPause = this.#localPauseUntil - this.#clock.now();
        if (localPause > 0) {
          await this.#sleep(localPause);
          continue;
        }
        const want = this.#waiters.size;
        let row: AcquireRow;
        try {
          row = await this.#acquireSlots(want);
        } catch (err) {
          // The callers' retry policy decides (transient faults are retryable);
          // a limiter that silently waited forever would hide a dead database.
          this.#waiters.rejectAll(err);
          return;
        }
        for (const id of row.slot_ids) {
          if (this.#waiters.size === 0) {
            // Its caller gave up while the grant was on its way: hand the slot back unused.
            const returning = this.#release(id, false).finally(() => this.#returning.delete(returning));
            this.#returning.add(returning);
            continue;
          }
          this.#inFlight++;
          this.#counters.granted++;
          this.#waiters.serve(this.#permit(id));
        }
        this.#blockedBy = row.blocked_by;
        if (row.slot_ids.length < want && this.#waiters.size > 0) {
          // +1: the timer may fire a fraction of a millisecond early.
          await this.#sleep(Math.ceil(row.wait_ms) + 1);
        }
      }
    } finally {
      // Cleared in the same tick the loop sees an empty queue, so the next
      // acquire starts a new pump instead of joining one that is ending.
      this.#pumpActive = false;
    }
  }

  #kick(): void {
    if (this.#pumpActive) return;
    this.#pumpActive = true;
    this.#pumping = this.#pump();
  }

  async #acquireSlots(want: number): Promise<AcquireRow> {
    await this.ready();
    if (this.#closed) throw this.#closedError();
    const s = this.#settings;
    this.#counters.acquireCalls++;
    try {
      const { rows } = await this.#pool.query<AcquireRow>(
        // text[]: the ids stay opaque strings whatever int8 parser the pool's owner installed.
        'SELECT slot_ids::text[] AS slot_ids, wait_ms, blocked_by FROM cxrec_rate_acquire($1, $2, $3, $4, $5, $6)',
        [s.key, s.limit, want, s.holdMs, s.maxInFlightMs, s.rampPollMs],
      );
      const row = rows[0];
      if (!row) throw new Error('cxrec_rate_acquire returned no row');
      return row;
    } catch (err) {
      throw this.#error('acquire', err);
    }
  }

  #permit(id: string): RatePermit {
    let released = false;
    return {
      release: async (options: { sent?: boolean } = {}) => {
        if (released) return;
        released = true;
        this.#inFlight--;
        await this.#release(id, options.sent !== false);
      },
    };
  }

  async #release(id: string, sent: boolean): Promise<void> {
    const s = this.#settings;
    if (this.#poolEnded) return; // the slot frees at its deadline, as a dead process's would
    try {
      await this.#pool.query('SELECT cxrec_rate_release($1, $2, $3, $4, $5)', [
        s.key,
        id,
        sent,
        s.holdMs,
        s.limit,
      ]);
    } catch (err) {
      // Not thrown: the request itself is done and its answer must reach the
      // caller. Safe: the slot keeps counting until its deadline + hold.
      this.#failed('release', err);
      return;
    }
    // A returned slot is free now, and a finished request may widen the
    // slow start; a sent request under a full budget frees nothing before
    // the pump's timer anyway, so it does not cost a database call.
    if (!sent || this.#blockedBy === 'ramp') this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        cancel();
        this.#wake = undefined;
        resolve();
      };
      const cancel = this.#clock.setTimer(done, Math.max(0, ms));
      this.#wake = done;
    });
  }

  #failed(what: string, err: unknown): void {
    this.#counters.failures++;
    this.#logger?.warn({ err: this.#error(what, err) }, `shared rate limit: ${what} failed`);
  }

  #error(what: string, err: unknown): CxrecError {
    if (err instanceof CxrecError) return err;
    const detail = err instanceof Error ? err.message : String(err);
    return new CxrecError('ledger', `shared rate limit ${what} failed on ${this.location}: ${detail}`, {
      cause: err,
      retryable: isTransient(err),
    });
  }

  #closedError(): CxrecError {
    return new CxrecError('aborted', `the shared rate limiter on ${this.location} is closed`);
  }
}

export type OpenPostgresRateLimitersOptions = Omit<
  PostgresRateLimiterOptions,
  'database' | 'location' | 'limit' | 'windowMs' | 'budget'
>;

/**
 * One shared limiter per budget on the database at `url`, through one
 * small pool; the schema is brought up to date first, so a bad URL or a
 * server down fails here rather than at the first request.
 */
export async function openPostgresRateLimiters<Name extends string>(
  url: string,
  budgets: readonly RateBudget<Name>[],
  options: OpenPostgresRateLimitersOptions = {},
): Promise<OpenedRateLimiters<Name, PostgresRateLimiter>> {
  // Validated before connecting, so a bad setting is reported as such.
  for (const b of budgets)
    rateLimitSettings({ ...options, limit: b.limit, windowMs: b.windowMs, budget: b.name });
  // Per budget: one acquire call and one release or pause at a time.
  const pool = openPostgresPool(url, 2 * Math.max(1, budgets.length));
  const location = redactUrlPassword(url);
  const all: PostgresRateLimiter[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const l of all) await l.close();
    await pool.end();
  };
  try {
    const limiters = limitersByName(budgets, (budget) => {
      const l = new PostgresRateLimiter({
        ...options,
        database: pool,
        location,
        limit: budget.limit,
        windowMs: budget.windowMs,
        budget: budget.name,
      });
      all.push(l);
      return l;
    });
    // One migration for all: they share the pool and the schema.
    await all[0]?.ready();
    return { limiters, close };
  } catch (err) {
    await close();
    throw err;
  }
}
