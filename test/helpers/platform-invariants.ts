/**
 * The invariants of `invariants.ts`, for the platform dialect
 * (cxone-platform-api.md): checked against the platform simulator's truth
 * (master contacts and their objects, `-2` suffixes included) and its two
 * budgets, and reported in the same `InvariantReport`, so the chaos soak
 * prints and judges both dialects with one table.
 */
import type { PlatformSimulatorStats, PlatformTruth } from '../../src/simulator/platform/index.js';
import type { JobRow } from '../../src/state/ledger.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import { localStorageView, type InvariantReport, type StorageView } from './invariants.js';

export interface PlatformInvariantOptions {
  truth: PlatformTruth;
  stats: PlatformSimulatorStats;
  storageDir?: string;
  storage?: StorageView;
  /** `CXREC_STATE`: a SQLite path or a postgres:// URL. */
  statePath: string;
  /** The exported window: master contacts starting in `[since, until)` are owed. @default the truth's createdFrom, no end */
  since?: string;
  until?: string;
}

async function readLedger(statePath: string): Promise<JobRow[]> {
  const ledger = await openLedger(parseStateTarget(statePath));
  try {
    return await ledger.list({});
  } finally {
    await ledger.close();
  }
}

/** Every invariant of the export against the platform truth; never throws for a broken one. */
export async function checkPlatformInvariants(options: PlatformInvariantOptions): Promise<InvariantReport> {
  const { truth, stats } = options;
  const storage = options.storage ?? (options.storageDir ? localStorageView(options.storageDir) : undefined);
  if (!storage) throw new TypeError('checkPlatformInvariants needs storage or storageDir');
  const since = Date.parse(options.since ?? truth.createdFrom);
  const until = options.until === undefined ? Infinity : Date.parse(options.until);
  const rows = await readLedger(options.statePath);
  const rowById = new Map(rows.map((r) => [r.recordingId, r]));
  // The budget of every non-playback call is the report's headline limit; the playback one is judged alongside.
  const other = stats.budgets.other;
  const playback = stats.budgets.playback;
  const over = (b: typeof other): number =>
    b.limit === false ? 0 : Math.max(0, b.peakArrivalsInWindow - b.limit.requests);
  const report: InvariantReport = {
    recordings: truth.masterContacts.length,
    rowsChecked: 0,
    expectedObjects: 0,
    visibleObjects: 0,
    lost: [],
    corrupt: [],
    duplicateObjects: [],
    partialVisible: [],
    wrongFinalState: [],
    unknownRows: [],
    requestsAboveLimit: Math.max(over(other), over(playback)),
    rateLimit: {
      limit: other.limit === false ? null : other.limit.requests,
      maxArrivalsInWindow: other.peakArrivalsInWindow,
      maxAcceptedInWindow: other.peakAcceptedInWindow,
      sent429: other.sent429 + playback.sent429,
      sentByLimit:
        (other.limit === false || other.peakAcceptedInWindow < other.limit.requests) &&
        (playback.limit === false || playback.peakAcceptedInWindow < playback.limit.requests)
          ? 0
          : null,
      injectedBursts: stats.faults.rateLimitBurst,
      // The platform's 429 carries no Retry-After (contract §4).
      arrivalsDuringRetryAfter: 0,
    },
    mediaBytesServed: stats.media.bytesServed,
    storedBytes: 0,
    redownloadedBytesRatio: 0,
  };

  const known = new Set<string>();
  const expectedKeys = new Map<string, { recordingId: string; sizeBytes: number; md5: string }>();
  const ownerByContent = new Map<string, string>();
  for (const master of truth.masterContacts) {
    for (const o of master.objects) {
      known.add(`${master.masterContactId}${o.keySuffix}`);
      if (o.sizeBytes > 1024)
        ownerByContent.set(`${o.md5}:${o.sizeBytes}`, `${master.masterContactId}${o.keySuffix}`);
    }
    known.add(master.masterContactId);
    const start = Date.parse(master.startDate);
    if (start < since || start >= until) continue;
    const check = (recordingId: string, expected: string): JobRow | undefined => {
      report.rowsChecked++;
      const row = rowById.get(recordingId);
      if (!row || row.state !== expected)
        report.wrongFinalState.push({
          recordingId,
          channel: 'combined',
          expected,
          actual: row ? row.state : 'missing',
          reason: row ? row.reason : null,
        });
      return row;
    };
    if (master.expected !== 'stored') {
      check(master.masterContactId, master.expected);
      continue;
    }
    for (const o of master.objects) {
      const recordingId = `${master.masterContactId}${o.keySuffix}`;
      const row = check(recordingId, o.expected);
      if (o.expected !== 'stored') continue;
      expectedKeys.set(o.key, { recordingId, sizeBytes: o.sizeBytes, md5: o.md5 });
      report.storedBytes += o.sizeBytes;
      if (!row || row.state !== 'stored' || !row.stored) {
        report.lost.push({
          recordingId,
          channel: 'combined',
          key: o.key,
          detail: `ledger row ${row ? row.state : 'missing'}`,
        });
      } else if (
        row.stored.md5 !== o.md5 ||
        row.stored.sizeBytes !== o.sizeBytes ||
        row.stored.key !== o.key
      ) {
        report.corrupt.push({
          recordingId,
          channel: 'combined',
          key: row.stored.key,
          detail: `ledger says ${row.stored.key} ${row.stored.sizeBytes} B md5 ${row.stored.md5}, truth ${o.key} ${o.sizeBytes} B md5 ${o.md5}`,
        });
      }
    }
  }
  for (const row of rows)
    if (!known.has(row.recordingId))
      report.unknownRows.push({ recordingId: row.recordingId, channel: row.channel });
  report.expectedObjects = expectedKeys.size;

  const committed = new Set<string>();
  for (const row of rows) if (row.state === 'stored' && row.stored) committed.add(row.stored.key);
  const keys = await storage.listKeys('recordings/');
  report.visibleObjects = keys.length;
  const keysByOwner = new Map<string, string[]>();
  for (const key of keys) {
    if (!committed.has(key)) report.partialVisible.push(key);
    const digest = await storage.digest(key);
    const expected = expectedKeys.get(key);
    if (expected && (digest.md5 !== expected.md5 || digest.sizeBytes !== expected.sizeBytes)) {
      report.corrupt.push({
        recordingId: expected.recordingId,
        channel: 'combined',
        key,
        detail: `${digest.sizeBytes} B md5 ${digest.md5}, truth ${expected.sizeBytes} B md5 ${expected.md5}`,
      });
    }
    if (digest.sizeBytes <= 1024)
      report.corrupt.push({
        recordingId: '?',
        channel: 'combined',
        key,
        detail: `${digest.sizeBytes} B: no audio is ever stored`,
      });
    const owner = ownerByContent.get(`${digest.md5}:${digest.sizeBytes}`) ?? expected?.recordingId ?? key;
    keysByOwner.set(owner, [...(keysByOwner.get(owner) ?? []), key]);
  }
  for (const [recordingId, owned] of keysByOwner)
    if (owned.length > 1) report.duplicateObjects.push({ recordingId, channel: 'combined', keys: owned });
  for (const [key, { recordingId }] of expectedKeys) {
    if (keys.includes(key) || report.lost.some((l) => l.key === key)) continue;
    report.lost.push({ recordingId, channel: 'combined', key, detail: 'no object in storage' });
  }
  for (const leftover of await storage.listStaging()) report.partialVisible.push(leftover);
  report.redownloadedBytesRatio =
    report.storedBytes > 0 ? report.mediaBytesServed / report.storedBytes - 1 : 0;
  return report;
}

/** The playback budget's figures, a line for the soak's text. */
export function playbackBudgetLine(stats: PlatformSimulatorStats): string {
  const b = stats.budgets.playback;
  const limit = b.limit === false ? 'off' : `${b.limit.requests}/${b.limit.windowSeconds} s`;
  return `playback budget ${limit}: peak arrivals ${b.peakArrivalsInWindow}, peak accepted ${b.peakAcceptedInWindow}, 429 sent ${b.sent429}; playback found ${stats.playback.found}, not found ${stats.playback.notFound}, URLs ${stats.playback.mediaUrlsIssued}`;
}
