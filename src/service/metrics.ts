/**
 * What `cxrec run` exposes on `/metrics` (prom-client). Ledger-derived
 * figures are read when Prometheus scrapes (at most once per 5 s however
 * many scrapers: `http-server.ts` reuses a scrape), and cost nothing between
 * scrapes; event figures (downloads, limiter waits) are recorded as they
 * happen.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { ApiStats } from '../cxone/stats.js';
import type { RateLimiter, RatePermit } from '../cxone/rate-limiter.js';
import type { JobOutcome } from '../pipeline/job-outcome.js';
import { retriesByKind } from '../retry-tally.js';
import { finalStates, workingStates, type Ledger, type LedgerCounts } from '../state/ledger.js';
import { MinuteCounter } from './status-data.js';
import type { MinuteSeries } from './status-page.js';

const DAY_MS = 86_400_000;

export interface ServiceMetrics {
  registry: Registry;
  /** Records one finished job. */
  jobDone(outcome: JobOutcome, durationMs: number): void;
  /** Media bytes received. */
  bytes(n: number): void;
  /** Wraps a limiter so the time callers wait for it is measured, and its permits counted per minute. */
  meter(limiter: RateLimiter): RateLimiter;
  /** A discovery pass of this process completed (epoch ms). */
  discoveryPassed(at: number): void;
  /** The API permits this process was granted per minute, the last hour (the status page's budget chart). */
  apiGrants(now: number): MinuteSeries;
}

export interface MetricsSources {
  ledger: Ledger;
  apiStats: () => ApiStats<string> | undefined;
  retentionDays: number;
  /** CXREC_RATE_LIMIT, exported so dashboards can show budget use as a fraction. */
  rateLimitPerMinute?: number;
  now: () => number;
}

export function createServiceMetrics(sources: MetricsSources): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cxrec_process_' });

  // prom-client collects every metric of a scrape concurrently: the gauges
  // below share one ledger read per scrape instead of one each.
  let countsRead: { at: number; counts: Promise<LedgerCounts> } | undefined;
  const counts = (): Promise<LedgerCounts> => {
    const at = sources.now();
    if (!countsRead || at - countsRead.at > 1000) countsRead = { at, counts: sources.ledger.counts() };
    return countsRead.counts;
  };

  new Gauge({
    name: 'cxrec_recordings',
    help: 'Ledger rows (recording × channel) by state and, for final states, reason',
    labelNames: ['state', 'reason'],
    registers: [registry],
    async collect() {
      const c = await counts();
      this.reset();
      for (const state of workingStates) this.set({ state, reason: '' }, c.byState[state] ?? 0);
      for (const state of finalStates) {
        const reasons = c.byReason[state] ?? {};
        if (Object.keys(reasons).length === 0) this.set({ state, reason: '' }, c.byState[state] ?? 0);
        for (const [reason, n] of Object.entries(reasons)) this.set({ state, reason }, n);
      }
    },
  });
  new Gauge({
    name: 'cxrec_backlog',
    help: 'Rows not yet in a final state',
    registers: [registry],
    async collect() {
      this.set((await counts()).backlog);
    },
  });
  new Gauge({
    name: 'cxrec_backlog_oldest_age_seconds',
    help: 'Age (from createdDate) of the oldest recording not yet settled',
    registers: [registry],
    async collect() {
      const oldest = (await counts()).oldestBacklogCreatedDate;
      this.set(oldest === null ? 0 : Math.max(0, (sources.now() - Date.parse(oldest)) / 1000));
    },
  });
  new Gauge({
    name: 'cxrec_stored_bytes',
    help: 'Bytes of every stored object in the ledger',
    registers: [registry],
    async collect() {
      this.set((await counts()).storedBytes);
    },
  });
  new Gauge({
    name: 'cxrec_recordings_near_retention',
    help: 'Unsettled rows older than 50 % of CXREC_RETENTION_DAYS: fetch them before the platform purges them',
    registers: [registry],
    async collect() {
      const limit = new Date(sources.now() - 0.5 * sources.retentionDays * DAY_MS).toISOString();
      // Counted by the database on jobs_state_created: one query, whatever the backlog.
      const { byState } = await sources.ledger.countRows({
        states: workingStates,
        created: { from: new Date(0).toISOString(), to: limit },
      });
      this.set(Object.values(byState).reduce((a, b) => a + b, 0));
    },
  });

  const seenCalls = new Map<string, number>();
  new Counter({
    name: 'cxrec_api_calls_total',
    help: 'CXone API calls by endpoint and answer (HTTP status, or network)',
    labelNames: ['endpoint', 'status'],
    registers: [registry],
    collect() {
      const stats = sources.apiStats();
      if (!stats) return;
      for (const [endpoint, byStatus] of Object.entries(stats.snapshot())) {
        for (const [status, n] of Object.entries(byStatus)) {
          const key = `${endpoint}\0${status}`;
          const delta = n - (seenCalls.get(key) ?? 0);
          if (delta > 0) this.inc({ endpoint, status }, delta);
          seenCalls.set(key, n);
        }
      }
    },
  });
  let seen429 = 0;
  new Counter({
    name: 'cxrec_rate_limited_total',
    help: 'Answers 429 from CXone (should stay 0: the limiter keeps under the budget)',
    registers: [registry],
    collect() {
      const n = sources.apiStats()?.count('429') ?? 0;
      if (n > seen429) this.inc(n - seen429);
      seen429 = n;
    },
  });
  const limiterWait = new Counter({
    name: 'cxrec_rate_limiter_wait_seconds_total',
    help: 'Time API calls spent waiting for the tenant rate limiter',
    registers: [registry],
  });
  const downloads = new Histogram({
    name: 'cxrec_download_duration_seconds',
    help: 'Time one recording channel took, from claim to outcome',
    labelNames: ['outcome'],
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
  });
  const lastDiscovery = new Gauge({
    name: 'cxrec_last_discovery_success_timestamp_seconds',
    help: 'When this process last completed a discovery pass (Unix seconds; 0: never, or not the discoverer)',
    registers: [registry],
  });
  new Gauge({
    name: 'cxrec_rate_limit_per_minute',
    help: 'CXREC_RATE_LIMIT: API requests per minute allowed for the whole tenant',
    registers: [registry],
    collect() {
      this.set(sources.rateLimitPerMinute ?? 0);
    },
  });
  const seenRetries = new Map<string, number>();
  new Counter({
    name: 'cxrec_retries_total',
    help: 'Transient faults absorbed by a retry, by kind (api, media, job, listing, ledger, credentials)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const [kind, n] of Object.entries(retriesByKind())) {
        const delta = n - (seenRetries.get(kind) ?? 0);
        if (delta > 0) this.inc({ kind }, delta);
        seenRetries.set(kind, n);
      }
    },
  });
  const grants = new MinuteCounter();
  const mediaBytes = new Counter({
    name: 'cxrec_media_bytes_total',
    help: 'Media bytes received from CXone',
    registers: [registry],
  });

  return {
    registry,
    jobDone(outcome, durationMs) {
      const label = outcome.kind === 'final' ? outcome.state : outcome.kind;
      downloads.observe({ outcome: label }, durationMs / 1000);
    },
    bytes(n) {
      mediaBytes.inc(n);
    },
    discoveryPassed(at) {
      lastDiscovery.set(at / 1000);
    },
    meter(limiter) {
      return {
        async acquire(options): Promise<RatePermit> {
          const started = performance.now();
          try {
            const permit = await limiter.acquire(options);
            grants.add(sources.now());
            return permit;
          } finally {
            limiterWait.inc((performance.now() - started) / 1000);
          }
        },
        pauseFor: (ms, options) => limiter.pauseFor(ms, options),
      };
    },
    apiGrants: (now) => grants.lastHour(now),
  };
}
