/**
 * Reads what the status page shows from the ledger: `counts()` (the same
 * figures as `cxrec status --json`) and `overview()` (backlog by age, the
 * last hour per minute, recent failures). API budget use comes from the
 * running process's own limiter when there is one (`cxrec run`: every
 * permit it was granted, the last hour complete), else from the ledger's
 * grant log (`cxrec ui`: it keeps about one rate window, so only the last
 * minute or two show).
 */
import type { JobRow, Ledger } from '../state/ledger.js';
import type { ExportWindowView, MinuteSeries, StatusPageModel } from './status-page.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/** Backlog age buckets: rows created at least `fromMs` and less than the next bucket's `fromMs` ago. */
export const backlogAgeBuckets: readonly { label: string; fromMs: number }[] = [
  { label: 'under 1 hour', fromMs: 0 },
  { label: '1 to 6 hours', fromMs: HOUR_MS },
  { label: '6 to 24 hours', fromMs: 6 * HOUR_MS },
  { label: '1 to 7 days', fromMs: DAY_MS },
  { label: '7 to 30 days', fromMs: 7 * DAY_MS },
  { label: '30 days or more', fromMs: 30 * DAY_MS },
];

/** Export windows the page lists, newest first. */
const recentExports = 20;

export interface StatusSources {
  ledger: Ledger;
  mode: 'run' | 'ui';
  rateLimitPerMinute: number;
  now: () => number;
  /** This process's API permits per minute over the hour ending at `now` (`cxrec run`). */
  processApiGrants?: ((now: number) => MinuteSeries) | undefined;
  /** The windows `export` covered, newest first. @default the ledger's last 20 exports */
  exports?: (() => Promise<readonly ExportWindowView[]>) | undefined;
  recentFailures?: number;
}

/** The 60 whole minutes ending with the current one. */
export function lastHourMinutes(now: number): { first: number; startMs: number } {
  const first = Math.floor(now / MINUTE_MS) - 59;
  return { first, startMs: first * MINUTE_MS };
}

function minuteSeries(rows: readonly { minute: number; count: number }[], now: number): MinuteSeries {
  const { first, startMs } = lastHourMinutes(now);
  const counts = new Array<number>(60).fill(0);
  for (const { minute, count } of rows) {
    const i = minute - first;
    if (i >= 0 && i < 60) counts[i] = (counts[i] ?? 0) + count;
  }
  return { startMs, counts };
}

/** The page's model, without a search. */
export async function readStatusModel(sources: StatusSources): Promise<StatusPageModel> {
  const now = sources.now();
  const { startMs } = lastHourMinutes(now);
  const [counts, overview, exports] = await Promise.all([
    sources.ledger.counts(),
    sources.ledger.overview({
      now,
      since: startMs,
      backlogAgesMs: backlogAgeBuckets.map((b) => b.fromMs),
      failures: sources.recentFailures ?? 20,
    }),
    sources.exports ? sources.exports() : sources.ledger.listExports(recentExports),
  ]);
  const older = overview.backlogOlderThan;
  const backlogByAge = backlogAgeBuckets.map((b, i) => ({
    label: b.label,
    count: (older[i] ?? 0) - (older[i + 1] ?? 0),
  }));
  const apiBudget = sources.processApiGrants
    ? {
        perMinute: sources.processApiGrants(now),
        source: 'permits this process was granted',
      }
    : {
        perMinute: minuteSeries(overview.apiGrantsPerMinute, now),
        source: "the ledger's grant log, which keeps about the last minute",
      };
  return {
    mode: sources.mode,
    generatedAt: now,
    ledgerLocation: sources.ledger.location,
    counts,
    backlogByAge,
    storedPerMinute: minuteSeries(overview.storedPerMinute, now),
    apiBudget: { ...apiBudget, limitPerMinute: sources.rateLimitPerMinute },
    recentFailures: overview.recentFailures,
    exports,
  };
}

/** Per-minute counts of events of the last hour, for `processApiGrants`. */
export class MinuteCounter {
  readonly #counts = new Map<number, number>();

  add(at: number, n = 1): void {
    const minute = Math.floor(at / MINUTE_MS);
    this.#counts.set(minute, (this.#counts.get(minute) ?? 0) + n);
    if (this.#counts.size > 120) {
      for (const m of this.#counts.keys()) if (m < minute - 60) this.#counts.delete(m);
    }
  }

  lastHour(now: number): MinuteSeries {
    return minuteSeries(
      [...this.#counts].map(([minute, count]) => ({ minute, count })),
      now,
    );
  }
}

/** The page's source for the HTTP server: the model, and searches through `Ledger.find`. */
export function statusPageSource(sources: StatusSources): {
  model(): Promise<StatusPageModel>;
  find(id: string, limit: number): Promise<JobRow[]>;
} {
  return {
    model: () => readStatusModel(sources),
    find: (id, limit) => sources.ledger.find(id, limit),
  };
}
