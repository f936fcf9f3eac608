/**
 * How much of the tenant's API budget the client uses when work is always
 * waiting, and whether it ever oversteps: many concurrent callers make
 * detail calls against the simulator limited to 600 requests per minute,
 * with the client's limiter set to the same 600/min. Targets: achieved
 * rate / limit ≥ 0.9, and zero 429s.
 *
 * The duration is a whole number of windows: with a sliding window the
 * budget of a stretch that is not is ambiguous (a burst at its start and
 * one just before its end would count double). `BENCH_QUICK=1` uses the
 * same 600/min as 100 per 10 s, over two windows (20 s) instead of one
 * minute.
 */
import { setMaxListeners } from 'node:events';

import { CxoneClient } from '../src/cxone/client.js';
import { SlidingWindowRateLimiter } from '../src/cxone/rate-limiter.js';
import { isAbortError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { startSimulator } from '../src/simulator/index.js';
import type { Benchmark, BenchResult } from './types.js';

const quick = process.env.BENCH_QUICK === '1';
const requests = quick ? 100 : 600;
const windowSeconds = quick ? 10 : 60;
const windows = quick ? 2 : 1;
const callers = 100;

export const benchmark: Benchmark = {
  name: 'rate-limit',
  async run(): Promise<BenchResult[]> {
    const sim = await startSimulator({ recordings: 50, rateLimit: { requests, windowSeconds }, seed: 21 });
    const client = new CxoneClient({
      apiUrl: sim.url,
      clientId: sim.clients[0]!.id,
      clientSecret: sim.clients[0]!.secret,
      rateLimiter: new SlidingWindowRateLimiter({ limit: requests, windowMs: windowSeconds * 1000 }),
      backoffBaseMs: 100,
      logger: createLogger({ level: 'silent' }),
    });
    const ids = sim.recordingIds();
    const durationMs = windows * windowSeconds * 1000;
    let failures = 0;
    try {
      // The token is an API call too; fetch it first so every caller starts together.
      await client.checkAccess();
      sim.resetStats();
      const started = performance.now();
      const stop = AbortSignal.timeout(durationMs);
      // One shutdown signal shared by every caller is the intended use; each
      // waiting caller holds a listener on it.
      setMaxListeners(callers * 4, stop);
      let next = 0;
      await Promise.all(
        Array.from({ length: callers }, async () => {
          while (!stop.aborted) {
            try {
              await client.detail(ids[next++ % ids.length]!, { signal: stop });
            } catch (err) {
              if (!isAbortError(err)) failures++;
            }
          }
        }),
      );
      const elapsedS = (performance.now() - started) / 1000;
      const stats = sim.stats();
      const accepted = stats.calls.detail.byStatus['200'] ?? 0;
      const budget = requests * windows;
      const ratio = accepted / budget;
      const rejected = stats.rateLimit.sent429;
      const perMinute = `${requests}/${windowSeconds} s`;
      return [
        {
          figure: `API rate / limit (${perMinute}, ${windows * windowSeconds} s, ${callers} callers)`,
          target: '≥ 0.9',
          measured: ratio.toFixed(3),
          pass: ratio >= 0.9,
          details: {
            accepted,
            budget,
            elapsedS,
            failures,
            maxAcceptedInWindow: stats.rateLimit.maxAcceptedInWindow,
          },
        },
        {
          figure: `429 answers at the tenant's true limit (${perMinute})`,
          target: '0',
          measured: String(rejected),
          pass: rejected === 0 && failures === 0,
          details: { sent429: rejected, clientCalls: client.stats() },
        },
      ];
    } finally {
      await client.close();
      await sim.stop();
    }
  },
};
