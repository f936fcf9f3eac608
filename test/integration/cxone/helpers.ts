/** Shared pieces of the CXone client's integration tests (not a test file itself). */
import { CxoneClient, type CxoneClientOptions } from '../../../src/cxone/client.js';
import type { RateLimiter, RatePermit } from '../../../src/cxone/rate-limiter.js';
import { createLogger } from '../../../src/log.js';
import type { Simulator } from '../../../src/simulator/index.js';

export const silentLogger = createLogger({ level: 'silent' });

/** A client for `sim`'s default API client, with a test-sized backoff. */
export function clientFor(
  sim: Simulator,
  rateLimiter: RateLimiter,
  overrides: Partial<CxoneClientOptions> = {},
): CxoneClient {
  const client = sim.clients[0];
  if (!client) throw new Error('the simulator has no API client');
  return new CxoneClient({
    apiUrl: sim.url,
    clientId: client.id,
    clientSecret: client.secret,
    rateLimiter,
    backoffBaseMs: 20,
    logger: silentLogger,
    ...overrides,
  });
}

export interface GrantRecord {
  grantedAt: number;
  releasedAt: number | undefined;
  sent: boolean;
}

/**
 * Wraps a limiter and writes down, on the wall clock, when each permit was
 * granted and released and when each tenant pause began and ended. The
 * transport sends right after the grant and releases right after the
 * answer, so these are the client's send and receive times.
 */
export class RecordingLimiter implements RateLimiter {
  readonly grants: GrantRecord[] = [];
  readonly pauses: { start: number; end: number }[] = [];

  constructor(private readonly inner: RateLimiter) {}

  async acquire(options: { signal?: AbortSignal | undefined } = {}): Promise<RatePermit> {
    const permit = await this.inner.acquire(options);
    const record: GrantRecord = { grantedAt: Date.now(), releasedAt: undefined, sent: true };
    this.grants.push(record);
    return {
      release: async (releaseOptions = {}) => {
        record.releasedAt ??= Date.now();
        record.sent = releaseOptions.sent !== false;
        await permit.release(releaseOptions);
      },
    };
  }

  async pauseFor(ms: number): Promise<void> {
    const start = Date.now();
    this.pauses.push({ start, end: start + ms });
    await this.inner.pauseFor(ms);
  }

  /** Requests sent while a pause we had been told about was running. */
  sentDuringPauses(): number {
    return this.grants.filter(
      (g) => g.sent && this.pauses.some((p) => g.grantedAt > p.start && g.grantedAt < p.end),
    ).length;
  }

  /**
   * An upper bound on requests that may reach the server inside a
   * Retry-After without the client being at fault: those sent before the
   * 429 reached us, and still unanswered when that 429 was sent (at least
   * `pauseStart - longest exchange`).
   */
  inFlightAtPauses(): number {
    const longest = Math.max(0, ...this.grants.map((g) => (g.releasedAt ?? Date.now()) - g.grantedAt));
    const overlapping = new Set<GrantRecord>();
    for (const p of this.pauses) {
      for (const g of this.grants) {
        if (g.sent && g.grantedAt <= p.start && (g.releasedAt ?? Infinity) >= p.start - longest)
          overlapping.add(g);
      }
    }
    return overlapping.size;
  }
}

/** Runs `callers` workers that each take jobs from a shared counter until `jobs` are done. */
export async function runConcurrently(
  callers: number,
  jobs: number,
  job: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < jobs) {
        const i = next++;
        await job(i);
      }
    }),
  );
}
