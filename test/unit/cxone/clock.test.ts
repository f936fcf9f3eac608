import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { maxTimerMs, sleep, systemClock } from '../../../src/cxone/clock.js';

describe('systemClock timers', () => {
  it('a delay past the timer limit does not fire at once (Node would after 1 ms)', async () => {
    let fired = 0;
    const cancelLong = systemClock.setTimer(() => fired++, maxTimerMs + 10_000);
    const cancelDays = systemClock.setTimer(() => fired++, 30 * 86_400_000);
    const cancelInfinite = systemClock.setTimer(() => fired++, Infinity);
    await new Promise((resolve) => setTimeout(resolve, 50));
    cancelLong();
    cancelDays();
    cancelInfinite();
    assert.equal(fired, 0);
  });

  it('short and negative delays still fire', async () => {
    await sleep(-5);
    let fired = false;
    await new Promise<void>((resolve) => {
      systemClock.setTimer(() => {
        fired = true;
        resolve();
      }, 5);
    });
    assert.equal(fired, true);
  });
});
