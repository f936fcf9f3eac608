/**
 * Several workers, one tenant (issue 6): three `cxrec run` processes on one
 * PostgreSQL ledger, simulator limit 600/min, CXREC_RATE_LIMIT=600, 1 000
 * recordings. Reports how much of the budget was used (the most requests
 * the tenant accepted in any 60 s window, over the limit; and the average
 * rate while work was waiting), 429s, and media bytes served over bytes
 * stored (nothing fetched twice).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startSimulator } from '../src/simulator/index.js';
import { parseStateTarget } from '../src/config.js';
import { openLedger } from '../src/state/open-state.js';
import { createTestDatabase } from '../test/helpers/postgres-database.js';
import { startCli } from '../test/helpers/run-cli.js';
import type { Benchmark, BenchResult } from './types.js';

const quick = process.env.BENCH_QUICK === '1';

export const benchmark: Benchmark = {
  name: 'distributed',
  async run(): Promise<BenchResult[]> {
    const limit = 600;
    const recordings = quick ? 700 : 1000;
    const sim = await startSimulator({
      recordings,
      seed: 13,
      timeScale: 600,
      rateLimit: { requests: limit, windowSeconds: 60 },
      media: { minBytes: 2048, maxBytes: 64 * 1024 },
      mix: { stillProcessing: 0, failed: 0, purged: 0, neverCaptured: 0, lateIndexed: 0, hostileIds: 0.05 },
    });
    const db = await createTestDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-dist-'));
    const env = {
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
      CXREC_STORAGE: join(dir, 'store'),
      CXREC_STATE: db.url,
      CXREC_RATE_LIMIT: String(limit),
      CXREC_DISCOVER_SECONDS: '1',
      CXREC_LOG_LEVEL: 'warn',
    };
    const started = performance.now();
    const runs = [0, 1, 2].map(() => startCli(['run'], env, { built: true }));
    const ledger = await openLedger(parseStateTarget(db.url));
    try {
      const deadline = Date.now() + 10 * 60_000;
      for (;;) {
        const counts = await ledger.counts();
        const stored = counts.byState.stored ?? 0;
        if (counts.backlog === 0 && stored + (counts.byState.media_unavailable ?? 0) >= recordings) break;
        if (Date.now() > deadline)
          throw new Error(`not done in 10 minutes: ${JSON.stringify(counts.byState)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const seconds = (performance.now() - started) / 1000;
      for (const r of runs) r.child.kill('SIGTERM');
      await Promise.all(runs.map((r) => r.done));
      const stats = sim.stats();
      const calls =
        stats.calls.token.total +
        stats.calls.search.total +
        stats.calls.detail.total +
        stats.calls.download.total;
      const counts = await ledger.counts();
      const peakUse = stats.rateLimit.maxAcceptedInWindow / limit;
      // Work waits for the budget from the start, so the whole run counts, minus one window of drain at most.
      const averageUse = calls / ((seconds / 60) * limit);
      const servedOverStored = stats.media.bytesServed / counts.storedBytes;
      return [
        {
          figure: `3 × cxrec run, limit ${limit}/min, ${recordings} recordings: most requests in any 60 s window / limit`,
          target: '≥ 0.9 and ≤ 1.0',
          measured: peakUse.toFixed(3),
          pass: peakUse >= 0.9 && peakUse <= 1,
          details: {
            maxAcceptedInWindow: stats.rateLimit.maxAcceptedInWindow,
            maxArrivalsInWindow: stats.rateLimit.maxArrivalsInWindow,
          },
        },
        {
          figure: '3 × cxrec run: average request rate over the run / limit',
          target: 'report',
          measured: `${averageUse.toFixed(3)} (${calls} calls in ${seconds.toFixed(0)} s)`,
          pass: undefined,
        },
        {
          figure: '3 × cxrec run: answers 429',
          target: '0',
          measured: String(stats.rateLimit.sent429),
          pass: stats.rateLimit.sent429 === 0,
        },
        {
          figure: '3 × cxrec run: media bytes served / bytes stored',
          target: '≤ 1.05',
          measured: servedOverStored.toFixed(3),
          pass: servedOverStored <= 1.05,
        },
      ];
    } finally {
      for (const r of runs) r.child.kill('SIGKILL');
      await ledger.close();
      await sim.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
