/**
 * The invariants an export must keep whatever happened to it (faults,
 * SIGKILLs, reruns), checked against the simulator's truth and stats, the
 * ledger and what storage shows. Used by the chaos soak (`npm run chaos`,
 * `test/e2e/chaos-short.test.ts`) and meant for the distributed variant
 * too: the ledger is opened from any `CXREC_STATE` value, and storage is
 * read only through a `StorageView`, so an S3 or Azure view can plug in.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

import type { SimulatorStats, SimulatorTruth, TruthChannel } from '../../src/simulator/index.js';
import type { Channel, JobRow } from '../../src/state/ledger.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import { partialDirName, recordingKeyPart, recordingObjectKey } from '../../src/storage/keys.js';

/** What the checker needs from a store: the visible objects, their bytes, and the staging leftovers. */
export interface StorageView {
  /** Where it is, for messages. */
  readonly location: string;
  /** Every visible object key under `prefix` (`/`-separated, relative to the store root), staging excluded. */
  listKeys(prefix: string): Promise<string[]>;
  /** Size and md5 (lowercase hex) of the bytes a reader gets for `key`. */
  digest(key: string): Promise<{ sizeBytes: number; md5: string }>;
  /**
   * Work in progress that outlived the export: `.partial/` files for local
   * storage; incomplete multipart uploads (S3) or uncommitted blocks (Azure)
   * for object stores.
   */
  listStaging(): Promise<string[]>;
}

async function walkFiles(root: string, dir: string, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    // A store nobody wrote to yet has no directory at all.
    return;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await walkFiles(root, path, out);
    else out.push(relative(root, path).split(sep).join('/'));
  }
}

/** A local directory store (`CXREC_STORAGE` a path), read straight from the file system. */
export function localStorageView(root: string): StorageView {
  return {
    location: root,
    async listKeys(prefix) {
      const out: string[] = [];
      await walkFiles(root, root, out);
      return out.filter((k) => k.startsWith(prefix) && !k.startsWith(`${partialDirName}/`)).sort();
    },
    async digest(key) {
      const md5 = createHash('md5');
      let sizeBytes = 0;
      for await (const chunk of createReadStream(join(root, ...key.split('/')))) {
        const buf = chunk as Buffer;
        sizeBytes += buf.length;
        md5.update(buf);
      }
      return { sizeBytes, md5: md5.digest('hex') };
    },
    async listStaging() {
      const out: string[] = [];
      await walkFiles(root, join(root, partialDirName), out);
      return out.sort();
    },
  };
}

export interface InvariantOptions {
  truth: SimulatorTruth;
  stats: SimulatorStats;
  /** Local storage root; ignored when `storage` is given. */
  storageDir?: string;
  /** How to read the store; defaults to `localStorageView(storageDir)`. */
  storage?: StorageView;
  /** `CXREC_STATE`: a SQLite path or a postgres:// URL. */
  statePath: string;
  /** `CXREC_CHANNELS`. @default ['combined'] */
  channels?: readonly Channel[];
  /** `CXREC_CHANNEL_FALLBACK`. @default 'combined' */
  channelFallback?: 'combined' | 'none';
}

export interface ObjectProblem {
  recordingId: string;
  channel: Channel;
  key: string;
  detail: string;
}

export interface RowProblem {
  recordingId: string;
  channel: Channel;
  expected: string;
  actual: string;
  reason: string | null;
}

export interface InvariantReport {
  recordings: number;
  /** Ledger rows (recording × wanted channel) the truth has an outcome for. */
  rowsChecked: number;
  /** Objects the truth says a correct export stores. */
  expectedObjects: number;
  /** Objects visible under `recordings/`. */
  visibleObjects: number;
  /** A wanted channel the truth says is retrievable, not stored in the ledger or not in storage. */
  lost: ObjectProblem[];
  /** An object, or a ledger row's stored digest, whose size/md5 differs from the truth. */
  corrupt: ObjectProblem[];
  /** Recording+channel pairs visible under more than one key. */
  duplicateObjects: { recordingId: string; channel: Channel; keys: string[] }[];
  /** Keys under `recordings/` that are no committed object of the ledger, and staging leftovers. */
  partialVisible: string[];
  /** Ledger rows whose state differs from the truth's `expected` (a missing row counts as `missing`). */
  wrongFinalState: RowProblem[];
  /** Ledger rows for recordings the simulator never had. */
  unknownRows: { recordingId: string; channel: Channel }[];
  /** `maxArrivalsInWindow − limit`, at least 0: how far the exporter went over the tenant's budget. */
  requestsAboveLimit: number;
  rateLimit: {
    limit: number | null;
    maxArrivalsInWindow: number;
    maxAcceptedInWindow: number;
    /** Every 429 the simulator sent (limit and injected bursts). */
    sent429: number;
    /**
     * 429s sent because the limit itself was reached. The simulator counts
     * them together with burst ones, but the limit can only refuse once
     * `limit` requests were accepted within a window, so when the accepted
     * peak stays below it this is exactly 0; otherwise `null` (unknown, at
     * most `sent429`).
     */
    sentByLimit: number | null;
    /** Injected 429 bursts started (each refuses everything for 1–3 s). */
    injectedBursts: number;
    /** Requests that arrived while a Retry-After was still running. */
    arrivalsDuringRetryAfter: number;
  };
  mediaBytesServed: number;
  /** Bytes of the objects the truth says must be stored. */
  storedBytes: number;
  /** `mediaBytesServed / storedBytes − 1` (0 when nothing is to be stored). */
  redownloadedBytesRatio: number;
}

function pairKey(recordingId: string, channel: Channel): string {
  return `${recordingId}\u0000${channel}`;
}

const objectKeyPattern = /^recordings\/(.+)_(combined|caller|agent)\.(wav|mp3)$/;

async function readLedger(statePath: string): Promise<JobRow[]> {
  const ledger = await openLedger(parseStateTarget(statePath));
  try {
    return await ledger.list({});
  } finally {
    await ledger.close();
  }
}

/** Checks every invariant and reports what broke; it never throws for a broken invariant. */
export async function checkInvariants(options: InvariantOptions): Promise<InvariantReport> {
  const { truth, stats } = options;
  const wanted = options.channels ?? ['combined'];
  const fallback = options.channelFallback ?? 'combined';
  let storage = options.storage;
  if (!storage) {
    if (options.storageDir === undefined) throw new TypeError('checkInvariants needs storage or storageDir');
    storage = localStorageView(options.storageDir);
  }

  const rows = await readLedger(options.statePath);
  const rowByPair = new Map(rows.map((r) => [pairKey(r.recordingId, r.channel), r]));
  const report: InvariantReport = {
    recordings: truth.recordings.length,
    rowsChecked: 0,
    expectedObjects: 0,
    visibleObjects: 0,
    lost: [],
    corrupt: [],
    duplicateObjects: [],
    partialVisible: [],
    wrongFinalState: [],
    unknownRows: [],
    requestsAboveLimit: 0,
    rateLimit: {
      limit: null,
      maxArrivalsInWindow: stats.rateLimit.maxArrivalsInWindow,
      maxAcceptedInWindow: stats.rateLimit.maxAcceptedInWindow,
      sent429: stats.rateLimit.sent429,
      sentByLimit: null,
      injectedBursts: stats.faults.rateLimitBurst,
      arrivalsDuringRetryAfter: stats.rateLimit.arrivalsDuringRetryAfter,
    },
    mediaBytesServed: stats.media.bytesServed,
    storedBytes: 0,
    redownloadedBytesRatio: 0,
  };

  // Content and key-part indexes, to attribute any visible object, even one under a key we never expected.
  const truthByPair = new Map<string, { recordingId: string; channel: TruthChannel }>();
  const pairByContent = new Map<string, { recordingId: string; channel: Channel }>();
  const idByKeyPart = new Map<string, string>();
  for (const rec of truth.recordings) {
    idByKeyPart.set(recordingKeyPart(rec.recordingId), rec.recordingId);
    for (const ch of rec.channels) {
      truthByPair.set(pairKey(rec.recordingId, ch.channel), { recordingId: rec.recordingId, channel: ch });
      // Bare-header media of never-captured channels are alike across recordings; they never get stored.
      if (ch.captured && ch.sizeBytes > 1024) {
        pairByContent.set(`${ch.md5}:${ch.sizeBytes}`, { recordingId: rec.recordingId, channel: ch.channel });
      }
    }
  }

  // Which object each (recording, channel) must end as, and which ledger state each wanted row must end in.
  const expectedKeys = new Map<string, { recordingId: string; channel: TruthChannel }>();
  for (const rec of truth.recordings) {
    const byChannel = new Map(rec.channels.map((c) => [c.channel, c]));
    for (const channel of wanted) {
      const ch = byChannel.get(channel);
      if (!ch) continue;
      report.rowsChecked++;
      const row = rowByPair.get(pairKey(rec.recordingId, channel));
      if (!row || row.state !== ch.expected) {
        report.wrongFinalState.push({
          recordingId: rec.recordingId,
          channel,
          expected: ch.expected,
          actual: row ? row.state : 'missing',
          reason: row ? row.reason : null,
        });
      }
      if (ch.expected === 'stored') {
        expectedKeys.set(recordingObjectKey(rec.recordingId, channel, ch.contentType), {
          recordingId: rec.recordingId,
          channel: ch,
        });
        if (!row || row.state !== 'stored' || !row.stored) {
          report.lost.push({
            recordingId: rec.recordingId,
            channel,
            key: recordingObjectKey(rec.recordingId, channel, ch.contentType),
            detail: `ledger row ${row ? row.state : 'missing'}`,
          });
        } else if (row.stored.md5 !== ch.md5 || row.stored.sizeBytes !== ch.sizeBytes) {
          report.corrupt.push({
            recordingId: rec.recordingId,
            channel,
            key: row.stored.key,
            detail: `ledger says ${row.stored.sizeBytes} B md5 ${row.stored.md5}, truth ${ch.sizeBytes} B md5 ${ch.md5}`,
          });
        }
      } else if (!ch.captured && fallback === 'combined' && channel !== 'combined') {
        // A never-captured channel falls back to combined: that one object is owed instead (CLI contract).
        const combined = byChannel.get('combined');
        if (combined?.expected === 'stored') {
          expectedKeys.set(recordingObjectKey(rec.recordingId, 'combined', combined.contentType), {
            recordingId: rec.recordingId,
            channel: combined,
          });
        }
      }
    }
  }
  for (const row of rows) {
    if (!truthByPair.has(pairKey(row.recordingId, row.channel))) {
      report.unknownRows.push({ recordingId: row.recordingId, channel: row.channel });
    }
  }
  report.expectedObjects = expectedKeys.size;
  for (const { channel } of expectedKeys.values()) report.storedBytes += channel.sizeBytes;

  // Every visible object: committed by the ledger, intact, and the only one for its recording+channel.
  const committedKeys = new Set<string>();
  for (const row of rows) if (row.state === 'stored' && row.stored) committedKeys.add(row.stored.key);
  const keys = await storage.listKeys('recordings/');
  report.visibleObjects = keys.length;
  const keysByPair = new Map<string, { recordingId: string; channel: Channel; keys: string[] }>();
  for (const key of keys) {
    if (!committedKeys.has(key)) report.partialVisible.push(key);
    const digest = await storage.digest(key);
    let owner = pairByContent.get(`${digest.md5}:${digest.sizeBytes}`);
    if (!owner) {
      const m = objectKeyPattern.exec(key);
      const id = m?.[1] === undefined ? undefined : idByKeyPart.get(m[1]);
      if (id !== undefined && m?.[2] !== undefined) owner = { recordingId: id, channel: m[2] as Channel };
    }
    const expected = expectedKeys.get(key);
    if (
      expected &&
      (digest.md5 !== expected.channel.md5 || digest.sizeBytes !== expected.channel.sizeBytes)
    ) {
      report.corrupt.push({
        recordingId: expected.recordingId,
        channel: expected.channel.channel,
        key,
        detail: `${digest.sizeBytes} B md5 ${digest.md5}, truth ${expected.channel.sizeBytes} B md5 ${expected.channel.md5}`,
      });
    } else if (!expected && owner) {
      const t = truthByPair.get(pairKey(owner.recordingId, owner.channel))?.channel;
      if (t && (digest.md5 !== t.md5 || digest.sizeBytes !== t.sizeBytes)) {
        report.corrupt.push({
          recordingId: owner.recordingId,
          channel: owner.channel,
          key,
          detail: `${digest.sizeBytes} B md5 ${digest.md5}, truth ${t.sizeBytes} B md5 ${t.md5}`,
        });
      }
    }
    if (owner) {
      const k = pairKey(owner.recordingId, owner.channel);
      const entry = keysByPair.get(k) ?? { ...owner, keys: [] };
      entry.keys.push(key);
      keysByPair.set(k, entry);
    }
  }
  for (const entry of keysByPair.values()) if (entry.keys.length > 1) report.duplicateObjects.push(entry);
  for (const [key, { recordingId, channel }] of expectedKeys) {
    if (keys.includes(key)) continue;
    // Already counted when the ledger row is not stored; here the ledger claims an object storage lacks.
    if (!report.lost.some((l) => l.key === key)) {
      report.lost.push({ recordingId, channel: channel.channel, key, detail: 'no object in storage' });
    }
  }
  for (const leftover of await storage.listStaging()) report.partialVisible.push(leftover);

  const limit = stats.rateLimit.limit;
  if (limit !== false) {
    report.rateLimit.limit = limit.requests;
    report.requestsAboveLimit = Math.max(0, stats.rateLimit.maxArrivalsInWindow - limit.requests);
    if (stats.rateLimit.maxAcceptedInWindow < limit.requests) report.rateLimit.sentByLimit = 0;
  } else {
    report.rateLimit.sentByLimit = 0;
  }
  report.redownloadedBytesRatio =
    report.storedBytes > 0 ? report.mediaBytesServed / report.storedBytes - 1 : 0;
  return report;
}

/** The pass/fail thresholds of the soak. */
export interface InvariantLimits {
  /** @default 0.10 */
  maxRedownloadedBytesRatio?: number;
}

export interface InvariantResult {
  name: string;
  measured: string;
  target: string;
  pass: boolean;
}

/** Each checked invariant with its measured value and target. */
export function evaluateInvariants(report: InvariantReport, limits: InvariantLimits = {}): InvariantResult[] {
  const maxRatio = limits.maxRedownloadedBytesRatio ?? 0.1;
  const zero = (name: string, n: number): InvariantResult => ({
    name,
    measured: String(n),
    target: '0',
    pass: n === 0,
  });
  return [
    zero('lost', report.lost.length),
    zero('corrupt', report.corrupt.length),
    zero('duplicate objects', report.duplicateObjects.length),
    zero('partial objects visible', report.partialVisible.length),
    zero('wrong final state', report.wrongFinalState.length),
    zero('requests above the limit in any window', report.requestsAboveLimit),
    {
      name: 're-downloaded bytes',
      measured: `${(report.redownloadedBytesRatio * 100).toFixed(2)} %`,
      target: `≤ ${(maxRatio * 100).toFixed(0)} %`,
      pass: report.redownloadedBytesRatio <= maxRatio,
    },
  ];
}

/** A plain-text table of the results, then the context figures, then the first few offenders of each kind. */
export function formatInvariants(report: InvariantReport, results: readonly InvariantResult[]): string {
  const w0 = Math.max(...results.map((r) => r.name.length), 9);
  const w1 = Math.max(...results.map((r) => r.measured.length), 8);
  const w2 = Math.max(...results.map((r) => r.target.length), 6);
  const lines = [
    `${'invariant'.padEnd(w0)}  ${'measured'.padStart(w1)}  ${'target'.padEnd(w2)}  result`,
    `${'-'.repeat(w0)}  ${'-'.repeat(w1)}  ${'-'.repeat(w2)}  ------`,
    ...results.map(
      (r) =>
        `${r.name.padEnd(w0)}  ${r.measured.padStart(w1)}  ${r.target.padEnd(w2)}  ${r.pass ? 'ok' : 'FAIL'}`,
    ),
    '',
    `recordings ${report.recordings}, ledger rows checked ${report.rowsChecked}, objects expected ${report.expectedObjects}, visible ${report.visibleObjects}, unknown ledger rows ${report.unknownRows.length}`,
    `rate limit ${report.rateLimit.limit ?? 'off'}: peak arrivals ${report.rateLimit.maxArrivalsInWindow}, peak accepted ${report.rateLimit.maxAcceptedInWindow}, 429 sent ${report.rateLimit.sent429} (by the limit ${report.rateLimit.sentByLimit ?? 'unknown'}, injected bursts ${report.rateLimit.injectedBursts}), arrivals during Retry-After ${report.rateLimit.arrivalsDuringRetryAfter}`,
    `media bytes served ${report.mediaBytesServed}, bytes to store ${report.storedBytes}`,
  ];
  const show = (label: string, items: readonly unknown[]): void => {
    if (items.length === 0) return;
    lines.push(`${label} (${items.length}, first 5):`);
    for (const item of items.slice(0, 5)) lines.push(`  ${JSON.stringify(item)}`);
  };
  show('lost', report.lost);
  show('corrupt', report.corrupt);
  show('duplicate objects', report.duplicateObjects);
  show('partial objects visible', report.partialVisible);
  show('wrong final state', report.wrongFinalState);
  show('unknown ledger rows', report.unknownRows);
  return lines.join('\n');
}
