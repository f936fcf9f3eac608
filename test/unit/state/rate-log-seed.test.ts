import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SlidingWindowRateLimiter, type RatePermit } from '../../../src/cxone/rate-limiter.js';
import { seedSlots } from '../../../src/state/sqlite-rate-log.js';
import { FakeClock, flush } from '../cxone/fake-clock.js';

describe('seedSlots', () => {
  // Wall 1 000 000 is monotonic 500 at start; a finished request counts 1 050 ms.
  const at = { nowWallMs: 1_000_000, nowMonoMs: 500, holdMs: 1050 };

  it('a finished row frees one hold after it finished, on the monotonic scale', () => {
    assert.deepEqual(seedSlots([{ acquiredAt: 999_000, doneAt: 999_700 }], at), [
      { freesAtMs: 500 + (999_700 + 1050 - 1_000_000) },
    ]);
  });

  it('an unfinished row (its process died) counts as finished at start', () => {
    assert.deepEqual(seedSlots([{ acquiredAt: 950_000, doneAt: null }], at), [{ freesAtMs: 500 + 1050 }]);
  });

  it('leaves out rows that no longer count, keeps one freeing just after start', () => {
    const slots = seedSlots(
      [
        { acquiredAt: 998_000, doneAt: 998_950 }, // frees exactly at start: gone
        { acquiredAt: 990_000, doneAt: 990_000 },
        { acquiredAt: 998_000, doneAt: 998_951 },
      ],
      at,
    );
    assert.deepEqual(slots, [{ freesAtMs: 501 }]);
  });

  it('a completion after start (the wall clock stepped back) is held no longer than a hold from start', () => {
    assert.deepEqual(seedSlots([{ acquiredAt: 1_005_000, doneAt: 1_006_000 }], at), [{ freesAtMs: 1550 }]);
  });
});

describe('SlidingWindowRateLimiter initialSlots', () => {
  it('seeded slots take budget until they free, in order', async () => {
    const clock = new FakeClock();
    await clock.advance(10_000);
    const limiter = new SlidingWindowRateLimiter({
      limit: 3,
      windowMs: 1000,
      marginMs: 0,
      clock,
      // Out of order on purpose; one already free.
      initialSlots: [{ freesAtMs: 10_400 }, { freesAtMs: 10_200 }, { freesAtMs: 9_000 }],
    });
    const permits: RatePermit[] = [];
    const pending = Array.from({ length: 3 }, () => limiter.acquire().then((p) => permits.push(p)));
    await flush();
    assert.equal(permits.length, 1, 'two of three slots are still held by the previous process');
    await clock.advance(199);
    assert.equal(permits.length, 1);
    await clock.advance(2);
    assert.equal(permits.length, 2);
    await clock.advance(200);
    assert.equal(permits.length, 3);
    await Promise.all(pending);
  });

  it('more seeded slots than the limit wait for enough of them to free', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({
      limit: 2,
      windowMs: 1000,
      marginMs: 0,
      clock,
      initialSlots: Array.from({ length: 4 }, () => ({ freesAtMs: 800 })),
    });
    let granted = false;
    const pending = limiter.acquire().then(() => (granted = true));
    await clock.advance(799);
    assert.equal(granted, false);
    await clock.advance(2);
    assert.equal(granted, true);
    await pending;
  });

  it('a slot freeing later than a window from now is held only a window', async () => {
    const clock = new FakeClock();
    const limiter = new SlidingWindowRateLimiter({
      limit: 1,
      windowMs: 1000,
      marginMs: 50,
      clock,
      initialSlots: [{ freesAtMs: 60_000 }],
    });
    let granted = false;
    const pending = limiter.acquire().then(() => (granted = true));
    await clock.advance(1049);
    assert.equal(granted, false);
    await clock.advance(2);
    assert.equal(granted, true);
    await pending;
  });
});
