/**
 * API calls counted per endpoint and answer, for `/metrics` and the export
 * summary. Every attempt counts (a retried call counts once per attempt),
 * because that is what the tenant's rate limit sees.
 */

/** The recording API's endpoints (`cxone-api.md`). */
export type Endpoint = 'token' | 'search' | 'detail' | 'download_url';

export const recordingApiEndpoints: readonly Endpoint[] = ['token', 'search', 'detail', 'download_url'];

/** An HTTP status, or `network` when no answer came (reset, timeout, refused). */
export type Outcome = number | 'network';

export type ApiStatsSnapshot<E extends string = Endpoint> = Record<E, Record<string, number>>;

/**
 * Each dialect names its own endpoints (`E`); the recording API's are the
 * default, so its counts, snapshot and metrics are what they always were.
 */
export class ApiStats<E extends string = Endpoint> {
  private readonly endpoints: readonly E[];
  private readonly counts: ApiStatsSnapshot<E>;
  /** Search items dropped because the listing had already yielded them. */
  duplicatesDropped = 0;
  /** Listings restarted from their watermark after a cursor expired. */
  searchRestarts = 0;

  constructor(endpoints: readonly E[] = recordingApiEndpoints as readonly string[] as readonly E[]) {
    this.endpoints = endpoints;
    this.counts = Object.fromEntries(endpoints.map((e) => [e, {}])) as ApiStatsSnapshot<E>;
  }

  record(endpoint: E, outcome: Outcome): void {
    const byOutcome: Record<string, number> = this.counts[endpoint];
    const key = String(outcome);
    byOutcome[key] = (byOutcome[key] ?? 0) + 1;
  }

  /** A copy: `{search: {"200": 12, "429": 1}, token: {"200": 1}, …}`. */
  snapshot(): ApiStatsSnapshot<E> {
    return Object.fromEntries(this.endpoints.map((e) => [e, { ...this.counts[e] }])) as ApiStatsSnapshot<E>;
  }

  /** Calls of one endpoint (or all) with one outcome, e.g. `count('429')`. */
  count(outcome: string, endpoint?: E): number {
    const endpoints = endpoint ? [endpoint] : this.endpoints;
    return endpoints.reduce((sum, e) => sum + (this.counts[e][outcome] ?? 0), 0);
  }

  /** Every attempt of one endpoint, or of all of them. */
  total(endpoint?: E): number {
    const endpoints = endpoint ? [endpoint] : this.endpoints;
    return endpoints.reduce((sum, e) => sum + Object.values(this.counts[e]).reduce((a, b) => a + b, 0), 0);
  }
}
