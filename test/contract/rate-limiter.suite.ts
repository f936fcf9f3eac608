/**
 * What every `RateLimiter` promises, run against the in-process, the
 * SQLite-persisted and the PostgreSQL limiters as the state factory opens
 * them. Windows are a few hundred milliseconds so the suite is quick; no
 * assertion bounds a duration from above (the machine may be loaded):
 * "at most N per window" is checked on the recorded grant times, waits
 * from below only, and "not granted" as still pending after a while
 * (the logic, not the speed, holds those back).
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';

import type { RateBudget, RateLimiter, RatePermit } from '../../src/cxone/rate-limiter.js';
import type { OpenedRateLimiters } from '../../src/state/rate-budgets.js';

/** One place budgets live (nothing, a file, a database), fresh for each test. */
export interface RateLimiterPlace {
  /**
   * Opens the budgets there. Opened again on the same place, the budgets
   * are those of another process (PostgreSQL), or of the process after a
   * restart (SQLite, once the first is closed).
   */
  open<Name extends string>(budgets: readonly RateBudget<Name>[]): Promise<OpenedRateLimiters<Name>>;
  cleanup(): Promise<void>;
}

export interface RateLimiterSuiteOptions {
  /** What a process spent is still counted by the next one on the same place. */
  persisted: boolean;
  /** Two opens at once on one place share each budget (several processes). */
  shared: boolean;
}

/** Resolves to whether `promise` settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await delay(ms);
  return settled;
}

/** The most of `times` (ascending or not) that fall in any half-open interval of `windowMs`. */
export function maxInAnyWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let head = 0;
  for (let i = 0; i < sorted.length; i++) {
    while ((sorted[head] as number) <= (sorted[i] as number) - windowMs) head++;
    most = Math.max(most, i - head + 1);
  }
  return most;
}

/**
 * `total` requests through `limiters` (round robin), `callers` at a time,
 * each holding its permit `holdMs` before releasing it as sent. Returns
 * the grant times (`performance.now()`).
 */
async function drive(
  limiters: readonly RateLimiter[],
  total: number,
  callers: number,
  holdMs: (i: number) => number = () => 0,
): Promise<number[]> {
  const grants: number[] = [];
  let started = 0;
  const caller = async (c: number): Promise<void> => {
    while (started < total) {
      const i = started++;
      const limiter = limiters[c % limiters.length] as RateLimiter;
      const permit = await limiter.acquire({ signal: AbortSignal.timeout(30_000) });
      grants.push(performance.now());
      const hold = holdMs(i);
      if (hold > 0) await delay(hold);
      await permit.release();
    }
  };
  await Promise.all(Array.from({ length: callers }, (_, c) => caller(c)));
  return grants;
}

const isAborted = { code: 'aborted' };

export function rateLimiterSuite(
  name: string,
  newPlace: () => Promise<RateLimiterPlace>,
  options: RateLimiterSuiteOptions,
): void {
  /** Runs `body` on a fresh place; every budget set it opened is closed after, then the place removed. */
  async function withPlace(body: (open: RateLimiterPlace['open']) => Promise<void>): Promise<void> {
    const place = await newPlace();
    const opened: OpenedRateLimiters[] = [];
    const open: RateLimiterPlace['open'] = async (budgets) => {
      const o = await place.open(budgets);
      opened.push(o);
      return o;
    };
    try {
      await body(open);
    } finally {
      for (const o of opened) await o.close();
      await place.cleanup();
    }
  }

  const oneMinute = (limit: number) => [{ name: 'api' as const, limit, windowMs: 60_000 }];

  describe(`rate limiter contract: ${name}`, () => {
    test('serves waiting callers in FIFO order', () =>
      withPlace(async (open) => {
        const { limiters } = await open(oneMinute(1));
        const held = await limiters.api.acquire();
        const order: number[] = [];
        const waiting = Array.from({ length: 5 }, (_, i) =>
          limiters.api.acquire().then(async (p) => {
            order.push(i);
            await p.release({ sent: false });
          }),
        );
        await held.release({ sent: false });
        await Promise.all(waiting);
        assert.deepEqual(order, [0, 1, 2, 3, 4]);
      }));

    test('an unused slot comes back at once; a sent one counts', () =>
      withPlace(async (open) => {
        const { limiters } = await open(oneMinute(1));
        await (await limiters.api.acquire()).release({ sent: false });
        // A minute's window: only the returned slot can grant this.
        const second = await limiters.api.acquire({ signal: AbortSignal.timeout(10_000) });
        await second.release();
        await assert.rejects(limiters.api.acquire({ signal: AbortSignal.timeout(300) }), isAborted);
      }));

    test('abort while waiting rejects, and the caller behind gets the slot', () =>
      withPlace(async (open) => {
        const { limiters } = await open(oneMinute(1));
        const held = await limiters.api.acquire();
        const controller = new AbortController();
        const aborted = limiters.api.acquire({ signal: controller.signal });
        const behind = limiters.api.acquire({ signal: AbortSignal.timeout(10_000) });
        await delay(50);
        controller.abort();
        await assert.rejects(aborted, isAborted);
        await held.release({ sent: false });
        await (await behind).release({ sent: false });
        // An already aborted signal never waits.
        await assert.rejects(limiters.api.acquire({ signal: AbortSignal.abort() }), isAborted);
      }));

    test('a pause told by a 429 holds every caller for the whole pause', () =>
      withPlace(async (open) => {
        const budgets = [{ name: 'api' as const, limit: 10, windowMs: 200 }];
        const first = await open(budgets);
        const other = options.shared ? await open(budgets) : first;
        const t0 = performance.now();
        await first.limiters.api.pauseFor(400);
        const grants = await drive([first.limiters.api, other.limiters.api], 4, 4);
        // 5 ms for timer rounding: a pause is never cut short by more.
        for (const at of grants)
          assert.ok(at - t0 >= 395, `granted ${Math.round(at - t0)} ms into a 400 ms pause`);
      }));

    test('after a pause: one request in flight, then twice as many per one answered', () =>
      withPlace(async (open) => {
        const budgets = [{ name: 'api' as const, limit: 10, windowMs: 200 }];
        const first = await open(budgets);
        const other = options.shared ? await open(budgets) : first;
        await first.limiters.api.pauseFor(100);
        const probe = await other.limiters.api.acquire();
        const second = first.limiters.api.acquire();
        const third = other.limiters.api.acquire();
        assert.equal(await settlesWithin(second, 300), false, 'held while the probe is in flight');
        await probe.release();
        const permits: RatePermit[] = [await second, await third];
        const fourth = first.limiters.api.acquire();
        assert.equal(await settlesWithin(fourth, 300), false, 'two in flight, not more');
        await (permits.shift() as RatePermit).release();
        permits.push(await fourth);
        for (const p of permits) await p.release();
      }));

    test('a 429 without Retry-After lowers the pace to 80 % of the limit', () =>
      withPlace(async (open) => {
        const first = await open(oneMinute(5));
        const other = options.shared ? await open(oneMinute(5)) : first;
        await first.limiters.api.pauseFor(0, { lowerPace: true });
        // Told again in the same window: the refusals of one burst lower it once (else 3, not 4).
        await other.limiters.api.pauseFor(0, { lowerPace: true });
        // A minute's window: nothing frees during the test, so the count is exact.
        for (let i = 0; i < 4; i++) {
          const limiter = (i % 2 === 0 ? first : other).limiters.api;
          await (await limiter.acquire({ signal: AbortSignal.timeout(10_000) })).release();
        }
        await assert.rejects(first.limiters.api.acquire({ signal: AbortSignal.timeout(300) }), isAborted);
        await assert.rejects(other.limiters.api.acquire({ signal: AbortSignal.timeout(300) }), isAborted);
      }));

    test('two named budgets are counted apart', () =>
      withPlace(async (open) => {
        const budgets = [
          { name: 'api' as const, limit: 1, windowMs: 60_000 },
          { name: 'playback' as const, limit: 1, windowMs: 60_000 },
        ];
        const { limiters } = await open(budgets);
        await (await limiters.api.acquire()).release();
        await assert.rejects(limiters.api.acquire({ signal: AbortSignal.timeout(300) }), isAborted);
        const playback = await limiters.playback.acquire({ signal: AbortSignal.timeout(10_000) });
        await playback.release();
        await assert.rejects(limiters.playback.acquire({ signal: AbortSignal.timeout(300) }), isAborted);
        // A 429 on one budget pauses only that one.
        const again = await open(budgets.map((b) => ({ ...b, name: `${b.name}-2` })));
        const ids: RateLimiter[] = Object.values(again.limiters);
        await (ids[0] as RateLimiter).pauseFor(60_000);
        await (await (ids[1] as RateLimiter).acquire({ signal: AbortSignal.timeout(10_000) })).release();
      }));

    test('never more than the limit in any window, whatever the callers and latencies', () =>
      withPlace(async (open) => {
        const windowMs = 200;
        const budgets = [{ name: 'api' as const, limit: 4, windowMs }];
        const first = await open(budgets);
        const other = options.shared ? await open(budgets) : first;
        const grants = await drive([first.limiters.api, other.limiters.api], 16, 8, (i) => (i * 7) % 30);
        assert.equal(grants.length, 16);
        assert.ok(maxInAnyWindow(grants, windowMs) <= 4, `${maxInAnyWindow(grants, windowMs)} in one window`);
      }));

    if (options.persisted) {
      test('a restart counts what the previous process spent, per budget', () =>
        withPlace(async (open) => {
          const windowMs = 300;
          const budgets = [
            { name: 'api' as const, limit: 4, windowMs },
            { name: 'playback' as const, limit: 4, windowMs },
          ];
          const before = await open(budgets);
          const grants = await drive([before.limiters.api], 4, 4);
          await before.close();
          const after = await open(budgets);
          // The playback budget was not spent: its whole window is there at once.
          const playback = await Promise.all(
            Array.from({ length: 4 }, () =>
              after.limiters.playback.acquire({ signal: AbortSignal.timeout(10_000) }),
            ),
          );
          for (const p of playback) await p.release({ sent: false });
          grants.push(...(await drive([after.limiters.api], 8, 4)));
          const most = maxInAnyWindow(grants, windowMs);
          assert.ok(most <= 4, `${most} grants in one window across the restart`);
        }));
    }
  });
}
