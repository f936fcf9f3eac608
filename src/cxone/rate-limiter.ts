/**
 * The tenant's API budget. CXone counts every `/api/v2/*` request (the
 * token endpoint included) in a sliding window shared by every worker and
 * process of the tenant, and answers 429 over it. One `RateLimiter` per
 * tenant stands in front of every such request.
 *
 * ## Why requests are counted from when they *complete*
 *
 * The server counts a request at its arrival time `a`, somewhere between
 * our send time `s` and the time `d` we see its answer (`s ≤ a ≤ d`).
 * Counting from `s` with a window "slightly longer" than the server's is
 * only safe if the margin exceeds the latency spread, which nobody knows
 * (one slow search and the guarantee is gone). Instead each request holds
 * its slot while in flight and for a full window after its answer
 * arrives: a new request is sent only at `t ≥ d + W`, so it arrives at
 * `a' ≥ t ≥ d + W ≥ a + W`, outside the server's window of the earlier
 * one. This holds for any latency, with no guess. The cost is one latency
 * per window per slot (≈ 5 ms in 60 s: 0.01 % of the budget).
 *
 * `marginMs` still lengthens the window a little, for what the argument
 * above does not cover: the server's clock running slightly faster than
 * ours over a window, and timer rounding (timers may fire up to a
 * millisecond early after integer rounding).
 *
 * ## Slow start after a pause
 *
 * A 429 means someone else is spending the budget too. When the pause
 * ends, releasing every waiting caller at once would send a herd into a
 * tenant that may refuse again, and every refused request that was already
 * on its way lands inside the new Retry-After. So after a pause at most one
 * request is in flight; each one answered without a new pause doubles
 * that, until the cap is gone. (A caller reports a 429 with `pauseFor`
 * *before* releasing its permit, so the limiter knows that request failed.)
 *
 * A refused (429) request does not count on the server, but we keep
 * counting it: a 429 means our picture of the budget was wrong (another
 * process is spending it), so erring on the slow side is right.
 *
 * ## Why `acquire` returns a permit
 *
 * Because of the above, the limiter must learn when each request ended.
 * A PostgreSQL-backed limiter (one budget for several processes) fits the
 * same shape: `acquire` inserts a row with `done_at = NULL` under an
 * advisory lock once fewer than `limit` rows are in flight or done within
 * the window, `release` sets `done_at = now()`, `pauseFor` raises a shared
 * `paused_until`. Hence every method is async.
 *
 * ## Named budgets and a lowered pace
 *
 * A tenant may count some requests apart (the platform dialect's media
 * playback has a budget of its own per 5 minutes): each such count is a
 * `RateBudget` with its own limiter, opened by name. And a 429 without
 * Retry-After says the tenant's real budget is below the one configured,
 * with no hint by how much: `pauseFor(ms, {lowerPace: true})` then also
 * takes the limit down to 80 % (at least 1 request) for the rest of the
 * process, at most once per window, because the other requests refused in
 * that window were sent at the old pace and say nothing about the new one.
 * The in-process limiter goes lower at once when its own answered requests
 * in the window show the tenant's budget (`loweredPace`).
 * The recording-api dialect never asks for it: CXone's API always sends
 * Retry-After.
 *
 * The SQL-backed limiters are in `src/state/` (they share the ledger's
 * database); this module is all that `src/cxone/` knows of them.
 */
import { CxrecError } from '../errors.js';
import { systemClock, type Clock } from './clock.js';
import { WaiterQueue } from './waiter-queue.js';

export interface RatePermit {
  /**
   * The request this permit was for is finished (answered or failed).
   * `sent: false` returns a slot that was never used (e.g. the token went
   * stale while waiting), so it does not count. Idempotent.
   */
  release(options?: { sent?: boolean }): Promise<void>;
}

export interface PauseOptions {
  /**
   * The 429 came without Retry-After: lower the pace too (see the module
   * comment). @default false
   */
  lowerPace?: boolean | undefined;
}

export interface RateLimiter {
  /**
   * Waits (FIFO among callers) until one more request may be sent, and
   * resolves with a permit to release when the request is finished.
   * Rejects with an `aborted` error when `signal` fires first.
   */
  acquire(options?: { signal?: AbortSignal | undefined }): Promise<RatePermit>;
  /**
   * The tenant answered 429: no request of any caller may go out for `ms`
   * from now. A shorter pause never shortens a longer one already set.
   * Call it before releasing the refused request's permit.
   * `lowerPace`: the 429 came although the limiter kept to its setting (a
   * limit set above the tenant's true one, which no `Retry-After` reveals):
   * send more slowly from now on.
   */
  pauseFor(ms: number, options?: PauseOptions): Promise<void>;
}

/** One count the tenant keeps: at most `limit` requests per `windowMs`. */
export interface RateBudget<Name extends string = string> {
  /** Names the budget; processes sharing a PostgreSQL ledger share each name's budget. */
  name: Name;
  limit: number;
  windowMs: number;
}

/**
 * The budget of every `/api/v2/*` request (CXREC_RATE_LIMIT per minute).
 * Its rows keep the names they had before budgets were named: the bare
 * tenant key on PostgreSQL, the column default on SQLite.
 */
export const apiBudgetName = 'api';

/** The server's window when none is given: CXone counts per minute. */
export const defaultWindowMs = 60_000;
/** Added to the window when no margin is given; see the module comment. */
export const defaultMarginMs = 50;
/** What a 429 without Retry-After multiplies the limit by. */
export const paceFactor = 0.8;

/**
 * The pace after a 429 without Retry-After. `answered` requests of ours
 * finished within the window before the refusal: the tenant took that many
 * and then refused, so its real budget is about that many, and going down
 * to it at once spares the refusals that lowering by 20 % per window meets
 * on the way (a limit set to twice the truth: 16 % of playback calls
 * refused, now 1-2 %). Never more than halved at once, since other clients
 * of the tenant may have spent part of the window; with nothing answered
 * there is no such hint, and the pace falls by `paceFactor`.
 */
export function loweredPace(pace: number, limit: number, answered: number): number {
  const byFactor = pace * paceFactor;
  if (answered <= 0) return byFactor;
  return Math.min(byFactor, Math.max(answered, 0.5 * pace * limit) / limit);
}

/** The requests allowed per window at `pace`: never below one. */
export function pacedLimit(limit: number, pace: number): number {
  return Math.max(1, Math.floor(limit * pace));
}

export interface SlidingWindowRateLimiterOptions {
  /** Requests allowed per window (CXREC_RATE_LIMIT for a 60 s window). */
  limit: number;
  /** The server's window. @default 60000 */
  windowMs?: number;
  /**
   * Added to the window; see the module comment for why it can be small.
   * @default 50
   */
  marginMs?: number;
  /** Injected by tests. @default systemClock */
  clock?: Clock;
  /**
   * Slots already taken when the limiter starts: requests of a process that
   * ran just before this one (see `state/sqlite-rate-log.ts`), which the
   * tenant still counts. Each holds a slot until `freesAtMs`, on `clock`'s
   * scale; ones already past are ignored. @default none
   */
  initialSlots?: readonly { freesAtMs: number }[];
}

/** Throws `config_invalid` unless the limit is a whole number ≥ 1, the window > 0 and the margin ≥ 0. */
export function checkRateLimitSettings(limit: number, windowMs: number, marginMs: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new CxrecError('config_invalid', 'the rate limit must be a whole number of requests ≥ 1', {
      context: { limit },
    });
  }
  if (!(windowMs > 0) || !(marginMs >= 0)) {
    throw new CxrecError('config_invalid', 'the rate-limit window must be > 0 and its margin ≥ 0', {
      context: { windowMs, marginMs },
    });
  }
}

/** Counters for metrics and tests. */
export interface RateLimiterStats {
  granted: number;
  waiting: number;
  inFlight: number;
  pauses: number;
  /** Total milliseconds requested by `pauseFor` (overlaps included). */
  pausedMs: number;
}

/**
 * The in-process limiter: a sliding log of completion times plus a count
 * of requests in flight, shared by all concurrent callers of one process.
 */
export class SlidingWindowRateLimiter implements RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly effectiveWindowMs: number;
  private readonly clock: Clock;
  /** Completion times, ascending (each is `clock.now()` at release). */
  private readonly done: number[] = [];
  private doneHead = 0;
  private inFlight = 0;
  private pausedUntil = -Infinity;
  /** Requests allowed in flight at once; finite only while slowly starting after a pause. */
  private rampCap = Infinity;
  /** Bumped by every pause, so a permit knows whether a pause happened while it was out. */
  private pauseEpoch = 0;
  /** The limit after 429s without Retry-After: `pacedLimit(limit, pace)`. */
  private pacedLimit: number;
  private pace = 1;
  private paceLoweredAt = -Infinity;
  private readonly waiters = new WaiterQueue<RatePermit>({
    what: 'waiting for the rate limit',
    // The head may have left: whoever is next may be grantable now.
    onAbort: () => this.pump(),
  });
  private cancelTimer: (() => void) | undefined;
  private timerAt = Infinity;
  private readonly counters = { granted: 0, pauses: 0, pausedMs: 0 };

  constructor(options: SlidingWindowRateLimiterOptions) {
    const windowMs = options.windowMs ?? defaultWindowMs;
    const marginMs = options.marginMs ?? defaultMarginMs;
    checkRateLimitSettings(options.limit, windowMs, marginMs);
    this.limit = options.limit;
    this.pacedLimit = options.limit;
    this.windowMs = windowMs;
    this.effectiveWindowMs = windowMs + marginMs;
    this.clock = options.clock ?? systemClock;
    // A seeded slot is a completion that happened one (effective) window
    // before it frees, so it leaves the window exactly like our own ones.
    // Clamped to now: it cannot have finished in the future, and a later
    // completion would hold the slot longer than asked.
    const now = this.clock.now();
    const seeded = (options.initialSlots ?? [])
      .map((slot) => slot.freesAtMs)
      .filter((freesAt) => Number.isFinite(freesAt) && freesAt > now)
      .map((freesAt) => Math.min(freesAt - this.effectiveWindowMs, now))
      .sort((a, b) => a - b);
    this.done.push(...seeded);
  }

  acquire(options: { signal?: AbortSignal | undefined } = {}): Promise<RatePermit> {
    const granted = this.waiters.wait(options.signal);
    this.pump();
    return granted;
  }

  pauseFor(ms: number, options: PauseOptions = {}): Promise<void> {
    const now = this.clock.now();
    const until = now + Math.max(0, ms);
    this.counters.pauses++;
    this.counters.pausedMs += Math.max(0, ms);
    this.pauseEpoch++;
    this.rampCap = 1;
    if (until > this.pausedUntil) this.pausedUntil = until;
    if (options.lowerPace && now - this.paceLoweredAt >= this.effectiveWindowMs) {
      this.prune(now);
      this.pace = loweredPace(this.pace, this.limit, this.done.length - this.doneHead);
      this.paceLoweredAt = now;
      this.pacedLimit = pacedLimit(this.limit, this.pace);
    }
    this.pump();
    return Promise.resolve();
  }

  stats(): RateLimiterStats {
    return {
      granted: this.counters.granted,
      waiting: this.waiters.size,
      inFlight: this.inFlight,
      pauses: this.counters.pauses,
      pausedMs: this.counters.pausedMs,
    };
  }

  /** Grants to waiters in order while the budget allows, then arms a timer for the next chance. */
  private pump(): void {
    const now = this.clock.now();
    this.prune(now);
    while (
      this.waiters.size > 0 &&
      now >= this.pausedUntil &&
      this.used() < this.pacedLimit &&
      this.inFlight < this.rampCap
    ) {
      this.inFlight++;
      this.counters.granted++;
      this.waiters.serve(this.permit());
    }
    this.arm(now);
  }

  private arm(now: number): void {
    let wakeAt = Infinity;
    if (this.waiters.size > 0) {
      if (now < this.pausedUntil) {
        wakeAt = this.pausedUntil;
      } else if (this.doneHead < this.done.length) {
        // Full: the oldest completion leaving the window frees a slot. When
        // the slots are all in flight instead, a release will pump.
        wakeAt = (this.done[this.doneHead] as number) + this.effectiveWindowMs;
      }
    }
    if (wakeAt === this.timerAt) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = wakeAt;
    if (wakeAt !== Infinity) {
      this.cancelTimer = this.clock.setTimer(
        () => {
          this.cancelTimer = undefined;
          this.timerAt = Infinity;
          this.pump();
        },
        // +1: a timer may fire a fraction of a millisecond early, and a
        // wake-up that finds nothing to do would just re-arm.
        Math.ceil(wakeAt - now) + 1,
      );
    }
  }

  private used(): number {
    return this.inFlight + (this.done.length - this.doneHead);
  }

  private prune(now: number): void {
    while (
      this.doneHead < this.done.length &&
      (this.done[this.doneHead] as number) + this.effectiveWindowMs <= now
    ) {
      this.doneHead++;
    }
    // Compact now and then instead of shifting on every prune.
    if (this.doneHead > 1024 && this.doneHead * 2 > this.done.length) {
      this.done.splice(0, this.doneHead);
      this.doneHead = 0;
    }
  }

  private permit(): RatePermit {
    let released = false;
    const epoch = this.pauseEpoch;
    return {
      release: (options: { sent?: boolean } = {}) => {
        if (released) return Promise.resolve();
        released = true;
        this.inFlight--;
        if (options.sent !== false) {
          this.done.push(this.clock.now());
          // Granted and answered with no pause in between: the tenant takes traffic again.
          if (epoch === this.pauseEpoch && this.rampCap !== Infinity) {
            this.rampCap = this.rampCap * 2 >= this.pacedLimit ? Infinity : this.rampCap * 2;
          }
        }
        this.pump();
        return Promise.resolve();
      },
    };
  }
}
