/**
 * What the platform simulator saw: calls per route and outcome, each
 * budget's arrivals, 429s and peak use of its sliding window, playback
 * answers, and media bytes per object. Served as `/__stats` on the API host.
 */
import type { FaultKind } from '../faults.js';
import { WindowPeak } from '../rate-limit.js';
import { CallLog, type CallCounts, type CallOutcome } from '../call-counts.js';
import type { BudgetOptions } from './options.js';

export type PlatformRoute =
  | 'openid-configuration'
  | 'cxone-configuration'
  | 'token'
  | 'completed-contacts'
  | 'hierarchy'
  | 'playback'
  | 'media'
  | 'other';

const routes: readonly PlatformRoute[] = [
  'openid-configuration',
  'cxone-configuration',
  'token',
  'completed-contacts',
  'hierarchy',
  'playback',
  'media',
  'other',
];

export type BudgetName = 'playback' | 'other';

export interface BudgetStats {
  /** `false` when the budget is off. */
  limit: BudgetOptions | false;
  /** Requests that reached the budget, refused ones included. */
  arrivals: number;
  accepted: number;
  sent429: number;
  /** The most accepted requests within any sliding window of the budget's length: at most `limit.requests`. */
  peakAcceptedInWindow: number;
  /** The same counting refused arrivals too. */
  peakArrivalsInWindow: number;
  /** The window the peaks were measured over (the limit's, or 60/300 s when off). */
  peakWindowSeconds: number;
}

export interface PlatformSimulatorStats {
  startedAt: string;
  since: string;
  calls: CallCounts<PlatformRoute>;
  budgets: Record<BudgetName, BudgetStats>;
  faults: Record<FaultKind, number>;
  tokens: { issued: number; refreshed: number; revoked: number; rejected: number };
  playback: {
    /** 200 answers, and the `fileToPlayUrl`s they held. */
    found: number;
    mediaUrlsIssued: number;
    /** 404 "Interaction Not Found" answers. */
    notFound: number;
    /** Distinct ids asked about with an accepted request. */
    distinctIdsAsked: number;
  };
  listingInserts: number;
  media: {
    bytesServed: number;
    objects: { masterContactId: string; key: string; requests: number; bytesServed: number }[];
  };
}

class BudgetCounter {
  arrivals = 0;
  accepted = 0;
  sent429 = 0;
  private arrivalPeak: WindowPeak;
  private acceptedPeak: WindowPeak;

  constructor(public windowSeconds: number) {
    this.arrivalPeak = new WindowPeak(windowSeconds * 1000);
    this.acceptedPeak = new WindowPeak(windowSeconds * 1000);
  }

  arrival(nowMs: number): void {
    this.arrivals++;
    this.arrivalPeak.record(nowMs);
  }

  accept(nowMs: number): void {
    this.accepted++;
    this.acceptedPeak.record(nowMs);
  }

  snapshot(limit: BudgetOptions | false): BudgetStats {
    return {
      limit: limit === false ? false : { ...limit },
      arrivals: this.arrivals,
      accepted: this.accepted,
      sent429: this.sent429,
      peakAcceptedInWindow: this.acceptedPeak.peak,
      peakArrivalsInWindow: this.arrivalPeak.peak,
      peakWindowSeconds: this.windowSeconds,
    };
  }
}

export class PlatformStatsRecorder {
  private readonly calls = new CallLog(routes);
  readonly budgets: Record<BudgetName, BudgetCounter>;
  found = 0;
  mediaUrlsIssued = 0;
  notFound = 0;
  private asked = new Set<string>();
  private media = new Map<
    string,
    { masterContactId: string; key: string; requests: number; bytesServed: number }
  >();

  constructor(windows: Record<BudgetName, number>) {
    this.budgets = {
      playback: new BudgetCounter(windows.playback),
      other: new BudgetCounter(windows.other),
    };
  }

  call(route: PlatformRoute, outcome: CallOutcome): void {
    this.calls.count(route, outcome);
  }

  /** A new window length for one budget (its limit changed): its peaks start over. */
  rewindow(name: BudgetName, windowSeconds: number): void {
    const old = this.budgets[name];
    const fresh = new BudgetCounter(windowSeconds);
    fresh.arrivals = old.arrivals;
    fresh.accepted = old.accepted;
    fresh.sent429 = old.sent429;
    this.budgets[name] = fresh;
  }

  askedAbout(id: string): void {
    this.asked.add(id);
  }

  mediaRequest(masterContactId: string, key: string): void {
    this.mediaEntry(masterContactId, key).requests++;
  }

  mediaBytes(masterContactId: string, key: string, n: number): void {
    this.mediaEntry(masterContactId, key).bytesServed += n;
  }

  private mediaEntry(masterContactId: string, key: string) {
    let entry = this.media.get(key);
    if (!entry) {
      entry = { masterContactId, key, requests: 0, bytesServed: 0 };
      this.media.set(key, entry);
    }
    return entry;
  }

  reset(): void {
    this.calls.reset();
    for (const name of ['playback', 'other'] as const)
      this.budgets[name] = new BudgetCounter(this.budgets[name].windowSeconds);
    this.found = 0;
    this.mediaUrlsIssued = 0;
    this.notFound = 0;
    this.asked = new Set();
    this.media = new Map();
  }

  snapshot(extra: {
    limits: Record<BudgetName, BudgetOptions | false>;
    faults: Record<FaultKind, number>;
    tokens: PlatformSimulatorStats['tokens'];
    listingInserts: number;
  }): PlatformSimulatorStats {
    const objects = [...this.media.values()].map((o) => ({ ...o }));
    return {
      ...this.calls.snapshot(),
      budgets: {
        playback: this.budgets.playback.snapshot(extra.limits.playback),
        other: this.budgets.other.snapshot(extra.limits.other),
      },
      faults: extra.faults,
      tokens: extra.tokens,
      playback: {
        found: this.found,
        mediaUrlsIssued: this.mediaUrlsIssued,
        notFound: this.notFound,
        distinctIdsAsked: this.asked.size,
      },
      listingInserts: extra.listingInserts,
      media: { bytesServed: objects.reduce((sum, o) => sum + o.bytesServed, 0), objects },
    };
  }
}
