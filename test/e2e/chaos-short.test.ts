/**
 * The chaos soak, short enough for every CI run: 200 recordings with every
 * fault kind on, `cxrec export` SIGKILLed 3 times at seeded random moments
 * and rerun until it exits 0, then every invariant asserted. `npm run
 * chaos` is the same soak at 1 000 recordings and 10 kills.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runChaosSoak } from '../helpers/chaos-soak.js';

test(
  'chaos: 200 recordings, all faults, 3 SIGKILLs, every invariant holds',
  { timeout: 300_000 },
  async () => {
    const result = await runChaosSoak({
      recordings: 200,
      kills: 3,
      seed: 17,
      rateLimit: 1200,
      // Small objects keep the run near 30 s on a shared 2-core CI box while still spanning several reads each.
      media: { minBytes: 4 * 1024, maxBytes: 96 * 1024 },
      killDelayMs: [800, 4000],
      maxReruns: 4,
      // Hang detectors, not speed checks: a rerun takes 25-60 s on a loaded 2-core machine.
      runTimeoutMs: 150_000,
      deadlineMs: 240_000,
    });
    // The whole table in the message: a failure shows every figure, not just the first broken one.
    assert.deepEqual(result.problems, [], result.text);
    for (const r of result.results)
      assert.ok(r.pass, `${r.name}: ${r.measured} (target ${r.target})\n${result.text}`);
    assert.ok(result.killsLanded >= 1, `no SIGKILL landed on a live export\n${result.text}`);
  },
);
