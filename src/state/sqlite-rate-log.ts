/**
 * The in-process limiter's memory across restarts, for a SQLite ledger.
 *
 * `SlidingWindowRateLimiter` knows only its own process's requests. When
 * the exporter is killed and started again at once, the tenant still
 * counts the dead process's requests of the last minute, and a new limiter
 * with an empty window would add a full budget on top (the chaos soak saw
 * 137 arrivals in one window against 120). So every grant is written to
 * `rate_limit_log` in the ledger's file before the request is sent, its
 * completion when it is released, and a starting process seeds its limiter
 * with every slot that may still count:
 *
 * - a released row counts until `done_at + window + margin`, exactly as it
 *   did in the process that sent it;
 * - a row never released belongs to a process that died with the request
 *   in flight. The request reached the server before that process died,
 *   hence before we start, so counting it as finished now is safe.
 *
 * Times are wall-clock milliseconds (two processes share no monotonic
 * clock), converted once at start into the limiter's monotonic scale. A
 * completion that seems to lie in the future (the wall clock stepped back)
 * is clamped to now, so a slot is never held longer than one window from
 * start; a forward step can make rows look older than they are, which
 * nothing short of the server's own count could detect.
 *
 * Each named budget keeps its own rows (the `budget` column, migration
 * 004; rows from before it belong to `api`) and its own limiter; all of a
 * process's budgets share one connection.
 *
 * The table comes from the ledger's migrations 003 and 004: this module
 * opens the file through `openSqliteDatabase`, which applies the ledger's
 * migrations, because the CLI opens the limiter before the ledger. Each
 * grant costs one INSERT and each release one UPDATE (autocommit, WAL,
 * synchronous=NORMAL: no fsync per commit), a few tens of microseconds at
 * the ≤ 20 requests/s the tenant allows. A failed write is logged and the
 * request goes ahead: losing a row only weakens the guarantee after a
 * crash, while failing the request would stop the export.
 */
import type Database from 'better-sqlite3';

import { systemClock, type Clock } from '../cxone/clock.js';
import {
  checkRateLimitSettings,
  defaultMarginMs,
  SlidingWindowRateLimiter,
  type PauseOptions,
  type RateBudget,
  type RateLimiter,
  type RateLimiterStats,
  type RatePermit,
} from '../cxone/rate-limiter.js';
import { CxrecError } from '../errors.js';
import type { Logger } from '../log.js';
import { limitersByName, type OpenedRateLimiters } from './rate-budgets.js';
import { openSqliteDatabase } from './sqlite.js';

/**
 * A write waits this long for another process's write lock. Shorter than
 * the ledger's 10 s: better-sqlite3 waits synchronously, blocking every
 * other request of this process, and a lost row only weakens the crash
 * guarantee.
 */
const busyTimeoutMs = 2000;
/** Releases between two prunes of rows that no longer count. */
const pruneEvery = 100;
/** At most one warning per this long about failed writes, with the count of the others. */
const warnIntervalMs = 10_000;

/** One row of `rate_limit_log`, wall-clock milliseconds. */
export interface RateLogRow {
  acquiredAt: number;
  /** `null` while in flight, or for ever when its process died with it in flight. */
  doneAt: number | null;
}

/**
 * Turns logged rows into slots for `SlidingWindowRateLimiter`'s
 * `initialSlots`: each frees `holdMs` (window + margin) after it finished,
 * an unfinished one (its process died) as if it finished at `nowWallMs`,
 * converted from the wall clock to the limiter's monotonic clock at the
 * one instant both were read (`nowWallMs` ≙ `nowMonoMs`). Rows that no
 * longer count are left out.
 */
export function seedSlots(
  rows: readonly RateLogRow[],
  at: { nowWallMs: number; nowMonoMs: number; holdMs: number },
): { freesAtMs: number }[] {
  const slots: { freesAtMs: number }[] = [];
  for (const row of rows) {
    // Unfinished: the request arrived before its process died, so before now.
    // Finished "in the future": the wall clock stepped back; now is the latest it can be.
    const finishedAt = Math.min(row.doneAt ?? at.nowWallMs, at.nowWallMs);
    const freesAtWall = finishedAt + at.holdMs;
    if (freesAtWall <= at.nowWallMs) continue;
    slots.push({ freesAtMs: at.nowMonoMs + (freesAtWall - at.nowWallMs) });
  }
  return slots;
}

export interface SqliteRateLogOptions {
  /** The budget whose rows these are. */
  budget: string;
  /** How long a finished request counts: the limiter's window + margin. */
  holdMs: number;
  /** Failed writes are reported here; they never fail a request. @default none */
  logger?: Pick<Logger, 'warn'> | undefined;
  /** Wall clock, injected by tests. @default Date.now */
  wallNow?: () => number;
}

/** One budget's rows of the `rate_limit_log` table of a ledger file; the connection belongs to the caller. */
export class SqliteRateLog {
  readonly location: string;
  readonly #db: Database.Database;
  readonly #budget: string;
  readonly #holdMs: number;
  readonly #logger: Pick<Logger, 'warn'> | undefined;
  readonly #wallNow: () => number;
  readonly #insert: Database.Statement<{ budget: string; at: number }>;
  readonly #finish: Database.Statement<{ id: number; at: number }>;
  readonly #forget: Database.Statement<{ id: number }>;
  readonly #prune: Database.Statement<{ budget: string; before: number }>;
  #releasesSincePrune = 0;
  #closed = false;
  #lastWarnAt = -Infinity;
  #suppressedWarnings = 0;

  constructor(db: Database.Database, location: string, options: SqliteRateLogOptions) {
    if (!(options.holdMs > 0)) {
      throw new CxrecError('config_invalid', 'the rate-limit hold must be > 0', {
        context: { holdMs: options.holdMs },
      });
    }
    this.#db = db;
    this.location = location;
    this.#budget = options.budget;
    this.#holdMs = options.holdMs;
    this.#logger = options.logger;
    this.#wallNow = options.wallNow ?? Date.now;
    this.#insert = db.prepare('INSERT INTO rate_limit_log (budget, acquired_at) VALUES (@budget, @at)');
    this.#finish = db.prepare('UPDATE rate_limit_log SET done_at = @at WHERE id = @id');
    this.#forget = db.prepare('DELETE FROM rate_limit_log WHERE id = @id');
    // Only finished rows: our own in-flight ones (done_at NULL) must survive
    // however long their request takes, in case we die with it.
    this.#prune = db.prepare('DELETE FROM rate_limit_log WHERE budget = @budget AND done_at < @before');
  }

  /**
   * At start: the rows that may still count, read under the write lock
   * together with marking the unfinished ones finished now (how they are
   * counted) and pruning the rest. Marking them matters when this process
   * dies too: the next one then counts them from this start, not its own.
   * Throws on failure: without the log the limiter would start blind.
   */
  takeOver(nowWallMs: number = this.#wallNow()): RateLogRow[] {
    try {
      return this.#takeOver(nowWallMs);
    } catch (err) {
      throw new CxrecError(
        'ledger',
        `cannot read the rate-limit log in ${this.location}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  #takeOver(nowWallMs: number): RateLogRow[] {
    const budget = this.#budget;
    const before = nowWallMs - this.#holdMs;
    return this.#db
      .transaction(() => {
        const rows = this.#db
          .prepare<{ budget: string; before: number }, RateLogRow>(
            `SELECT acquired_at AS acquiredAt, done_at AS doneAt FROM rate_limit_log
             WHERE budget = @budget AND (done_at IS NULL OR done_at > @before)`,
          )
          .all({ budget, before });
        this.#db
          .prepare('UPDATE rate_limit_log SET done_at = @now WHERE budget = @budget AND done_at IS NULL')
          .run({ budget, now: nowWallMs });
        this.#prune.run({ budget, before });
        return rows;
      })
      .immediate();
  }

  /** A permit was granted; returns the row's id, or `undefined` when the write failed (logged). */
  recordGrant(atWallMs: number = this.#wallNow()): number | undefined {
    if (this.#closed) return undefined;
    try {
      return Number(this.#insert.run({ budget: this.#budget, at: atWallMs }).lastInsertRowid);
    } catch (err) {
      this.#warn('recording a grant', err);
      return undefined;
    }
  }

  /** The permit's request finished (`sent`), or its slot went back unused (row deleted). Never throws. */
  recordRelease(id: number | undefined, sent: boolean, atWallMs: number = this.#wallNow()): void {
    if (this.#closed || id === undefined) return;
    try {
      if (sent) this.#finish.run({ id, at: atWallMs });
      else this.#forget.run({ id });
      if (++this.#releasesSincePrune >= pruneEvery) {
        this.#releasesSincePrune = 0;
        this.#prune.run({ budget: this.#budget, before: atWallMs - this.#holdMs });
      }
    } catch (err) {
      this.#warn('recording a release', err);
    }
  }

  /** Stops writing (the connection is about to close). */
  close(): void {
    this.#closed = true;
  }

  #warn(what: string, err: unknown): void {
    const now = this.#wallNow();
    if (now - this.#lastWarnAt < warnIntervalMs) {
      this.#suppressedWarnings++;
      return;
    }
    const suppressed = this.#suppressedWarnings;
    this.#lastWarnAt = now;
    this.#suppressedWarnings = 0;
    this.#logger?.warn(
      { err, ledger: this.location, budget: this.#budget, suppressed },
      `rate-limit log: ${what} failed; the request goes ahead, but a restart right after a crash may not count it`,
    );
  }
}

/**
 * The in-process limiter, seeded from and writing to the log. Permits
 * released after the log closed are no longer written, which only matters
 * if the process then crashes within a window.
 */
export class PersistedRateLimiter implements RateLimiter {
  readonly #inner: SlidingWindowRateLimiter;
  readonly #log: SqliteRateLog;

  constructor(inner: SlidingWindowRateLimiter, log: SqliteRateLog) {
    this.#inner = inner;
    this.#log = log;
  }

  get limit(): number {
    return this.#inner.limit;
  }

  async acquire(options: { signal?: AbortSignal | undefined } = {}): Promise<RatePermit> {
    const permit = await this.#inner.acquire(options);
    // Written before the caller can send: a crash from here on leaves a row.
    const id = this.#log.recordGrant();
    let released = false;
    return {
      release: async (releaseOptions: { sent?: boolean } = {}) => {
        if (!released) {
          released = true;
          this.#log.recordRelease(id, releaseOptions.sent !== false);
        }
        await permit.release(releaseOptions);
      },
    };
  }

  /** Not persisted: a pause is over long before a restart matters, and a lowered pace is for this process. */
  pauseFor(ms: number, options?: PauseOptions): Promise<void> {
    return this.#inner.pauseFor(ms, options);
  }

  stats(): RateLimiterStats {
    return this.#inner.stats();
  }
}

export interface OpenSqliteRateLimitersOptions {
  /** Added to each budget's window (see `cxone/rate-limiter.ts`). @default 50 */
  marginMs?: number | undefined;
  logger?: Pick<Logger, 'warn'> | undefined;
  /** Monotonic clock of the limiters, injected by tests. @default systemClock */
  clock?: Clock | undefined;
  /** Wall clock of the log, injected by tests. @default Date.now */
  wallNow?: (() => number) | undefined;
}

/**
 * Opens the log in the ledger file at `path` (migrating it like the ledger
 * does) and, per budget, a limiter seeded with the slots a previous
 * process left counting. `close` closes the file. Not for `:memory:`:
 * nothing would outlive the process.
 */
export function openSqliteRateLimiters<Name extends string>(
  path: string,
  budgets: readonly RateBudget<Name>[],
  options: OpenSqliteRateLimitersOptions = {},
): OpenedRateLimiters<Name, PersistedRateLimiter> {
  if (path === ':memory:') {
    throw new CxrecError('config_invalid', 'a rate-limit log in :memory: would not outlive the process');
  }
  const marginMs = options.marginMs ?? defaultMarginMs;
  const clock = options.clock ?? systemClock;
  const wallNow = options.wallNow ?? Date.now;
  // A bad setting fails before the file is created.
  for (const b of budgets) checkRateLimitSettings(b.limit, b.windowMs, marginMs);
  const { db, location } = openSqliteDatabase(path);
  const logs: SqliteRateLog[] = [];
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    const limiters = limitersByName(budgets, (budget) => {
      const holdMs = budget.windowMs + marginMs;
      const log = new SqliteRateLog(db, location, {
        budget: budget.name,
        holdMs,
        logger: options.logger,
        wallNow,
      });
      logs.push(log);
      // Both clocks read back to back, so the conversion is off by microseconds at most.
      const nowWallMs = wallNow();
      const nowMonoMs = clock.now();
      const initialSlots = seedSlots(log.takeOver(nowWallMs), { nowWallMs, nowMonoMs, holdMs });
      const inner = new SlidingWindowRateLimiter({
        limit: budget.limit,
        windowMs: budget.windowMs,
        marginMs,
        clock,
        initialSlots,
      });
      return new PersistedRateLimiter(inner, log);
    });
    let closed = false;
    return {
      limiters,
      close() {
        if (!closed) {
          closed = true;
          for (const log of logs) log.close();
          db.close();
        }
        return Promise.resolve();
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}
