import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { loweredPace, SlidingWindowRateLimiter, type RatePermit } from '../../../src/cxone/rate-limiter.js';
import { sleep } from '../../../src/cxone/clock.js';
import { FakeClock, flush } from './fake-clock.js';

/** A model of the server: a sliding log of arrival times, refusing over the limit. */
class ServerWindow {
  private arrivals: number[] = [];
  refused = 0;
  accepted = 0;
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}
  arrive(at: number): boolean {
    this.arrivals = this.arrivals.filter((t) => t > at - this.windowMs);
    if (this.arrivals.length >= this.limit) {
      this.refused++;
      return false;
    }
    this.arrivals.push(at);
    this.accepted++;
    return true;
  }
}

describe('SlidingWindowRateLimiter', () => {
  it('grants up to the limit at once, then one more per slot leaving the window', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 3, windowMs: 1000, marginMs: 0, clock });
    const permits: RatePermit[] = [];
    const pending = Array.from({ length: 5 }, () => limiter.acquire().then((p) => permits.push(p)));
    await flush();
    assert.equal(permits.length, 3);
    // Slots are held while in flight, so nothing frees up with time alone.
    await clock.advance(5000);
    assert.equal(permits.length, 3);
    await permits[0]!.release();
    await clock.advance(999);
    assert.equal(permits.length, 3);
    await clock.advance(2);
    assert.equal(permits.length, 4);
    for (const p of permits) await p.release();
    await clock.advance(1001);
    await Promise.all(pending);
    assert.equal(permits.length, 5);
  });

  it('serves waiters in FIFO order', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 1, windowMs: 100, marginMs: 0, clock });
    const order: number[] = [];
    const all = Array.from({ length: 6 }, (_, i) =>
      limiter.acquire().then(async (p) => {
        order.push(i);
        await p.release();
      }),
    );
    for (let i = 0; i < 10; i++) await clock.advance(101);
    await Promise.all(all);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  });

  it('returns an unused slot without counting it', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 1, windowMs: 1000, clock });
    const first = await limiter.acquire();
    let second = false;
    const next = limiter.acquire().then(() => (second = true));
    await first.release({ sent: false });
    await flush();
    assert.equal(second, true);
    await next;
  });

  it('pauses every caller for the whole pause, then resumes with a slow start', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 100, windowMs: 1000, clock });
    await limiter.pauseFor(3000);
    await limiter.pauseFor(1000); // a shorter pause must not shorten the longer one
    const granted: { at: number; permit: RatePermit }[] = [];
    const all = Array.from({ length: 7 }, () =>
      limiter.acquire().then((permit) => granted.push({ at: clock.now(), permit })),
    );
    await clock.advance(2999);
    assert.equal(granted.length, 0);
    await clock.advance(10);
    // One probe first; each answer without a new pause doubles what may be in flight.
    assert.equal(granted.length, 1);
    await granted[0]!.permit.release();
    await flush();
    assert.equal(granted.length, 3);
    await granted[1]!.permit.release();
    await granted[2]!.permit.release();
    await flush();
    assert.equal(granted.length, 7);
    await Promise.all(all);
    assert.ok(granted.every((g) => g.at >= 3000));
  });

  it('keeps probing one at a time while 429s keep coming', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 100, windowMs: 1000, clock });
    await limiter.pauseFor(1000);
    const granted: RatePermit[] = [];
    const all = Array.from({ length: 3 }, () => limiter.acquire().then((p) => granted.push(p)));
    await clock.advance(1001);
    assert.equal(granted.length, 1);
    // The probe is refused: its caller reports the pause, then releases.
    await limiter.pauseFor(1000);
    await granted[0]!.release();
    await clock.advance(500);
    assert.equal(granted.length, 1);
    await clock.advance(501);
    assert.equal(granted.length, 2);
    // This probe gets through: two may now be in flight.
    await granted[1]!.release();
    await flush();
    assert.equal(granted.length, 3);
    await Promise.all(all);
  });

  it('rejects an aborted waiter, removes it, and lets the next one through', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 1, windowMs: 1000, marginMs: 0, clock });
    const held = await limiter.acquire();
    const controller = new AbortController();
    const aborted = limiter.acquire({ signal: controller.signal });
    const after = limiter.acquire();
    controller.abort();
    await assert.rejects(aborted, { code: 'aborted' });
    assert.equal(limiter.stats().waiting, 1);
    await held.release();
    await clock.advance(1001);
    await after;
    await assert.rejects(limiter.acquire({ signal: AbortSignal.abort() }), { code: 'aborted' });
  });

  it('never exceeds a server sliding window, whatever the latencies, and uses nearly all of it', async () => {
    const clock = new FakeClock();
    const windowMs = 10_000;
    const limit = 20;
    const limiter = new SlidingWindowRateLimiter({ limit, windowMs, marginMs: 0, clock });
    const server = new ServerWindow(limit, windowMs);
    // Deterministic but uneven latencies: the send→arrival part and the
    // arrival→answer part both vary, which breaks "count from send time".
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const endAt = 20 * windowMs;
    const worker = async (): Promise<void> => {
      while (clock.now() < endAt) {
        const permit = await limiter.acquire();
        await sleep(Math.floor(rand() * 400), undefined, clock); // request on its way
        server.arrive(clock.now());
        await sleep(Math.floor(rand() * 400), undefined, clock); // answer on its way
        await permit.release();
      }
    };
    let finished = 0;
    const workers = Array.from({ length: 50 }, () => worker().then(() => finished++));
    while (finished < workers.length) await clock.advance(50);
    await Promise.all(workers);
    assert.equal(server.refused, 0);
    // 20 windows' worth of budget; each window loses at most ~one latency.
    const budget = (limit * endAt) / windowMs;
    assert.ok(server.accepted >= 0.9 * budget, `accepted ${server.accepted} of ${budget}`);
  });

  it('a 429 without Retry-After lowers the pace once per window, never below one request', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 2, windowMs: 1000, marginMs: 0, clock });
    /** Grants within one window from now, each released at once. */
    const grantsInOneWindow = async (): Promise<number> => {
      let granted = 0;
      const controller = new AbortController();
      const pending = Array.from({ length: 3 }, () =>
        limiter.acquire({ signal: controller.signal }).then(
          async (p) => {
            granted++;
            await p.release();
          },
          () => undefined,
        ),
      );
      await clock.advance(999);
      controller.abort();
      await Promise.all(pending);
      await clock.advance(1001); // the window empties
      return granted;
    };
    assert.equal(await grantsInOneWindow(), 2);
    await limiter.pauseFor(0, { lowerPace: true });
    await limiter.pauseFor(0, { lowerPace: true }); // same window: the same burst of refusals
    assert.equal(await grantsInOneWindow(), 1, 'floor(2 × 0.8)');
    for (let i = 0; i < 3; i++) {
      await limiter.pauseFor(0, { lowerPace: true }); // 2 × 0.8⁵ < 1
      await clock.advance(1001);
    }
    assert.equal(await grantsInOneWindow(), 1, 'never below one');
    // A pause without the flag leaves the pace alone.
    const other = new SlidingWindowRateLimiter({ limit: 2, windowMs: 1000, marginMs: 0, clock });
    await other.pauseFor(0);
    const permits = [await other.acquire()];
    await permits[0]!.release();
    permits.push(await other.acquire());
    assert.equal(permits.length, 2);
  });

  it('a 429 after requests answered in the window lowers the pace to what the tenant took', async () => {
    // The tenant took 30 of a configured 60 and refused the next: 30 it is, not 48 then 38 then 30.
    assert.equal(loweredPace(1, 60, 30), 0.5);
    // Nothing of ours answered in the window: no hint, 80 %.
    assert.equal(loweredPace(1, 60, 0), 0.8);
    // More answered than 80 % of the pace: the factor still lowers it.
    assert.equal(loweredPace(1, 60, 55), 0.8);
    // Others may have spent the window: never below half the pace at once.
    assert.equal(loweredPace(1, 60, 10), 0.5);
    assert.equal(loweredPace(0.5, 60, 20), 20 / 60);

    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({ limit: 6, windowMs: 1000, marginMs: 0, clock });
    for (let i = 0; i < 3; i++) await (await limiter.acquire()).release();
    const refused = await limiter.acquire();
    await limiter.pauseFor(0, { lowerPace: true });
    await refused.release();
    await clock.advance(1001); // the window empties
    let granted = 0;
    const controller = new AbortController();
    const pending = Array.from({ length: 6 }, () =>
      limiter.acquire({ signal: controller.signal }).then(
        async (p) => {
          granted++;
          await p.release();
        },
        () => undefined,
      ),
    );
    await clock.advance(999);
    controller.abort();
    await Promise.all(pending);
    assert.equal(granted, 3, 'the three the tenant took before refusing');
  });

  it('refuses nonsense limits', () => {
    assert.throws(() => new SlidingWindowRateLimiter({ limit: 0 }), { code: 'config_invalid' });
    assert.throws(() => new SlidingWindowRateLimiter({ limit: 1.5 }), { code: 'config_invalid' });
    assert.throws(() => new SlidingWindowRateLimiter({ limit: 5, windowMs: 0 }), { code: 'config_invalid' });
  });
});

describe('sleep', () => {
  it('is abortable and removes its listener', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const waiting = sleep(10_000, controller.signal, clock);
    controller.abort();
    await assert.rejects(waiting, { code: 'aborted' });
    assert.equal(clock.pendingTimers(), 0);

    const done = sleep(100, controller.signal.aborted ? undefined : controller.signal, clock);
    await clock.advance(100);
    await done;
  });
});
