/**
 * What the simulator saw, for tests and benchmarks to assert on: calls per
 * endpoint and status, how the rate limit was treated, and media bytes per
 * object. Served as `/__stats` and by `handle.stats()`.
 */
import { CallLog, type CallCounts, type CallOutcome } from './call-counts.js';
import type { Channel } from './options.js';
import type { FaultKind } from './faults.js';
import { WindowPeak } from './rate-limit.js';

export type Endpoint = 'token' | 'search' | 'detail' | 'download' | 'media' | 'other';
const endpoints: readonly Endpoint[] = ['token', 'search', 'detail', 'download', 'media', 'other'];

export type { CallOutcome } from './call-counts.js';

export interface SimulatorStats {
  startedAt: string;
  /** When the counters were last reset (`resetStats()`), else the start. */
  since: string;
  calls: CallCounts<Endpoint>;
  rateLimit: {
    /** `false` when disabled. */
    limit: { requests: number; windowSeconds: number } | false;
    /** 429 answers sent, from the limit and from injected bursts. */
    sent429: number;
    /** `/api/v2` requests that arrived while a Retry-After the simulator had sent was still running. */
    arrivalsDuringRetryAfter: number;
    /** The most `/api/v2` requests that arrived within any sliding `peakWindowSeconds` window. */
    maxArrivalsInWindow: number;
    /** The same, counting only requests that were not refused with 429. */
    maxAcceptedInWindow: number;
    peakWindowSeconds: number;
  };
  faults: Record<FaultKind, number>;
  tokens: { issued: number; revoked: number; rejected: number };
  cursors: { issued: number; expired: number; invalidated: number };
  listingInserts: number;
  downloadUrlsIssued: number;
  media: {
    bytesServed: number;
    objects: { recordingId: string; channel: Channel; key: string; requests: number; bytesServed: number }[];
  };
}

export class StatsRecorder {
  private readonly calls = new CallLog(endpoints);
  sent429 = 0;
  arrivalsDuringRetryAfter = 0;
  downloadUrlsIssued = 0;
  tokensIssued = 0;
  tokensRevoked = 0;
  tokensRejected = 0;
  private retryAfterUntilMs = 0;
  private readonly arrivals: WindowPeak;
  private readonly accepted: WindowPeak;
  private media = new Map<
    string,
    { recordingId: string; channel: Channel; key: string; requests: number; bytesServed: number }
  >();

  constructor(readonly peakWindowSeconds: number) {
    this.arrivals = new WindowPeak(peakWindowSeconds * 1000);
    this.accepted = new WindowPeak(peakWindowSeconds * 1000);
  }

  call(endpoint: Endpoint, outcome: CallOutcome): void {
    this.calls.count(endpoint, outcome);
  }

  /** An `/api/v2` request arrived (before the limiter decides). */
  apiArrival(nowMs: number): void {
    this.arrivals.record(nowMs);
    if (nowMs < this.retryAfterUntilMs) this.arrivalsDuringRetryAfter++;
  }

  apiAccepted(nowMs: number): void {
    this.accepted.record(nowMs);
  }

  sentRetryAfter(nowMs: number, seconds: number): void {
    this.sent429++;
    this.retryAfterUntilMs = Math.max(this.retryAfterUntilMs, nowMs + seconds * 1000);
  }

  mediaRequest(recordingId: string, channel: Channel, key: string): void {
    this.mediaEntry(recordingId, channel, key).requests++;
  }

  mediaBytes(recordingId: string, channel: Channel, key: string, bytes: number): void {
    this.mediaEntry(recordingId, channel, key).bytesServed += bytes;
  }

  private mediaEntry(recordingId: string, channel: Channel, key: string) {
    let entry = this.media.get(key);
    if (!entry) {
      entry = { recordingId, channel, key, requests: 0, bytesServed: 0 };
      this.media.set(key, entry);
    }
    return entry;
  }

  reset(): void {
    this.calls.reset();
    this.sent429 = 0;
    this.arrivalsDuringRetryAfter = 0;
    this.downloadUrlsIssued = 0;
    this.tokensIssued = 0;
    this.tokensRevoked = 0;
    this.tokensRejected = 0;
    this.arrivals.reset();
    this.accepted.reset();
    this.media = new Map();
  }

  snapshot(
    extra: Pick<SimulatorStats, 'faults' | 'cursors' | 'listingInserts'> & {
      limit: SimulatorStats['rateLimit']['limit'];
    },
  ): SimulatorStats {
    const objects = [...this.media.values()].map((o) => ({ ...o }));
    return {
      ...this.calls.snapshot(),
      rateLimit: {
        limit: extra.limit,
        sent429: this.sent429,
        arrivalsDuringRetryAfter: this.arrivalsDuringRetryAfter,
        maxArrivalsInWindow: this.arrivals.peak,
        maxAcceptedInWindow: this.accepted.peak,
        peakWindowSeconds: this.peakWindowSeconds,
      },
      faults: extra.faults,
      tokens: { issued: this.tokensIssued, revoked: this.tokensRevoked, rejected: this.tokensRejected },
      cursors: extra.cursors,
      listingInserts: extra.listingInserts,
      downloadUrlsIssued: this.downloadUrlsIssued,
      media: { bytesServed: objects.reduce((sum, o) => sum + o.bytesServed, 0), objects },
    };
  }
}
