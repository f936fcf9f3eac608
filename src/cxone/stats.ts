/**
 * API calls counted per endpoint and answer, for `/metrics` and the export
 * summary. Every attempt counts (a retried call counts once per attempt),
 * because that is what the tenant's rate limit sees.
 */

export type Endpoint = 'token' | 'search' | 'detail' | 'download_url';

/** An HTTP status, or `network` when no answer came (reset, timeout, refused). */
export type Outcome = number | 'network';

export type ApiStatsSnapshot = Record<Endpoint, Record<string, number>>;

export class ApiStats {
  private readonly counts: ApiStatsSnapshot = { token: {}, search: {}, detail: {}, download_url: {} };
  /** Search items dropped because the listing had already yielded them. */
  duplicatesDropped = 0;
  /** Listings restarted from their watermark after a cursor expired. */
  searchRestarts = 0;

  record(endpoint: Endpoint, outcome: Outcome): void {
    const byOutcome = this.counts[endpoint];
    const key = String(outcome);
    byOutcome[key] = (byOutcome[key] ?? 0) + 1;
  }

  /** A copy: `{search: {"200": 12, "429": 1}, token: {"200": 1}, …}`. */
  snapshot(): ApiStatsSnapshot {
    return {
      token: { ...this.counts.token },
      search: { ...this.counts.search },
      detail: { ...this.counts.detail },
      download_url: { ...this.counts.download_url },
    };
  }

  /** Calls of one endpoint (or all) with one outcome, e.g. `count('429')`. */
  count(outcome: string, endpoint?: Endpoint): number {
    const endpoints: Endpoint[] = endpoint ? [endpoint] : ['token', 'search', 'detail', 'download_url'];
    return endpoints.reduce((sum, e) => sum + (this.counts[e][outcome] ?? 0), 0);
  }

  /** Every attempt of every endpoint. */
  total(): number {
    return Object.values(this.counts).reduce(
      (sum, byOutcome) => sum + Object.values(byOutcome).reduce((a, b) => a + b, 0),
      0,
    );
  }
}
