/**
 * The chaos soak for the platform dialect, short enough for every CI run:
 * 80 calls with every trap of cxone-platform-api.md and every fault kind
 * on (token revocations, resets, short bodies, stalls, 5xx, 429 bursts),
 * URLs that expire after 1.5 s and tokens after 6 s (time scale 600),
 * `cxrec export` SIGKILLed at start-up, amid the first listing and amid
 * transfers, then rerun until it exits 0: every retrievable recording
 * stored once, nothing corrupt or partial, neither budget exceeded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runChaosSoak } from '../helpers/chaos-soak.js';

test(
  'platform chaos: 80 calls, all traps and faults, SIGKILLs at start-up, listing and transfers, every invariant holds',
  { timeout: 300_000 },
  async () => {
    const result = await runChaosSoak({
      dialect: 'platform',
      recordings: 80,
      kills: 5,
      seed: 23,
      rateLimit: 1200,
      playbackLimit: 600,
      media: { minBytes: 4 * 1024, maxBytes: 96 * 1024 },
      // Before login, right after it, amid the first listing, as the first transfer starts and amid transfers.
      killAt: [
        300,
        { after: 'login' },
        { after: 'listing' },
        { after: 'transfer' },
        { after: 'transfer', plusMs: 1500 },
      ],
      killDelayMs: [2500, 5000],
      maxReruns: 4,
      // Hang detectors, not speed checks: a rerun takes 25-60 s on a loaded 2-core machine.
      runTimeoutMs: 150_000,
      deadlineMs: 240_000,
    });
    assert.deepEqual(result.problems, [], result.text);
    for (const r of result.results)
      assert.ok(r.pass, `${r.name}: ${r.measured} (target ${r.target})\n${result.text}`);
    assert.ok(result.killsLanded >= 4, `fewer than 4 SIGKILLs landed on a live export\n${result.text}`);
    assert.ok(result.report.expectedObjects > 60, result.text);
  },
);
