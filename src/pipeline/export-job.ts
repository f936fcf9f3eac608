/**
 * `cxrec export`: one backfill of `since ≤ createdDate < until`.
 *
 *   list the window ─▶ ledger ─▶ workers download what is ready
 *          ▲                 └──▶ waiting rows re-checked with backoff
 *          └── once nothing is left to do, list the window again; the
 *              export ends only when that listing finds nothing new
 *              (late indexing, contract §2).
 *
 * API calls are the scarce resource: a clean combined-only export costs one
 * token, one search call per 100 recordings (twice: first and last
 * listing) and one download-URL call per recording.
 */
import { CxrecError, describeError, isRetryable } from '../errors.js';
import { backoffDelayMs } from '../cxone/retry-policy.js';
import type { Logger } from '../log.js';
import type { FinalState, JobRow, Ledger } from '../state/ledger.js';
import { isFinalState, workingStates } from '../state/ledger.js';
import type { ObjectStore } from '../storage/object-store.js';
import { sleep } from '../cxone/clock.js';
import { discoverWindow, recheckWaiting, type DiscoverContext } from './discover.js';
import { decodeUploadRef } from './upload-ref.js';
import { createDownloadPool } from './download-pool.js';
import type { PipelineSettings } from './pipeline-settings.js';
import type { RecordingApi } from './recording-api.js';
import { writeSidecars } from './sidecars.js';
import { isFatal, newOwnerId, releaseDeadLocalLeases } from './workers.js';
import type { Dispatcher } from 'undici';

export interface ExportOptions {
  since: Date;
  until: Date;
  api: RecordingApi;
  ledger: Ledger;
  store: ObjectStore;
  dispatcher: Dispatcher;
  settings: PipelineSettings;
  log: Logger;
  signal: AbortSignal;
  /** Called with each progress snapshot (about once a second). */
  onProgress?: (progress: ExportProgress) => void;
  now?: () => number;
}

export interface ExportProgress {
  phase: 'listing' | 'downloading' | 'waiting' | 'final listing' | 'done' | 'stopping';
  total: number;
  done: number;
  stored: number;
  waiting: number;
  downloading: number;
  bytes: number;
  elapsedMs: number;
}

export interface ExportSummary {
  /** Rows of the window by final state and reason. */
  byState: Partial<Record<FinalState, Record<string, number>>>;
  /** Rows of the window not in a final state (non-zero only after an interrupted export). */
  unsettled: number;
  total: number;
  bytesDownloaded: number;
  listings: number;
  elapsedMs: number;
  interrupted: boolean;
}

export async function runExport(options: ExportOptions): Promise<ExportSummary> {
  const now = options.now ?? (() => Date.now());
  const started = now();
  const { ledger, store, log } = options;
  const owner = newOwnerId();
  const window = { from: options.since.toISOString(), to: options.until.toISOString() };
  let bytes = 0;
  let phase: ExportProgress['phase'] = 'listing';
  let listings = 0;

  await releaseDeadLocalLeases(ledger, now(), log);
  await discardAbandonedUploads(ledger, store, now(), log);

  const { settings } = options;
  const discoverCtx: DiscoverContext = { ...settings, api: options.api, ledger, log, now };
  const pool = createDownloadPool({
    api: options.api,
    ledger,
    store,
    dispatcher: options.dispatcher,
    settings,
    owner,
    log,
    now,
    onBytes: (n) => {
      bytes += n;
    },
  });

  /** A listing that meets a fault its client could not ride out is tried again, a few times, before the export gives up. */
  const retrying = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    retryTransient(what, fn, options.signal, log, settings.backoffSeconds * 1000);

  const stopWorkers = new AbortController();
  const workerSignal = AbortSignal.any([options.signal, stopWorkers.signal]);
  const workers = pool.run(workerSignal);

  /** Rows of this window not settled yet: few, so cheap to read every tick. */
  const openRows = async (): Promise<JobRow[]> =>
    inWindow(await ledger.list({ states: workingStates }), window);
  // A whole-window count is a read of every row: refreshed every few seconds only.
  let windowTally = { total: 0, stored: 0, at: -Infinity };
  const progressTimer = setInterval(() => {
    reportProgress().catch((err: unknown) => log.debug({ err }, 'progress read failed'));
  }, 1000);
  async function reportProgress(): Promise<void> {
    if (!options.onProgress) return;
    if (now() - windowTally.at > 5000) {
      const rows = await windowRows(ledger, window);
      windowTally = {
        total: rows.length,
        stored: rows.filter((r) => r.state === 'stored').length,
        at: now(),
      };
    }
    const open = await openRows();
    options.onProgress({
      phase: options.signal.aborted ? 'stopping' : phase,
      total: Math.max(windowTally.total, open.length),
      done: Math.max(0, windowTally.total - open.length),
      stored: windowTally.stored,
      waiting: open.filter((r) => r.state === 'waiting').length,
      downloading: open.filter((r) => r.state === 'downloading').length,
      bytes,
      elapsedMs: now() - started,
    });
  }

  try {
    listings++;
    await retrying('listing', () => discoverWindow(discoverCtx, window, options.signal));
    pool.notify();
    phase = 'downloading';
    for (;;) {
      if (pool.fatalError) throw pool.fatalError;
      options.signal.throwIfAborted();
      await retrying('re-check', () => recheckWaiting(discoverCtx, options.signal)).then((r) => {
        if (r.becameAvailable > 0) pool.notify();
      });
      // Only this window's rows decide the end: a shared ledger may hold others' work.
      const open = await retrying('ledger read', openRows);
      const waiting = open.filter((r) => r.state === 'waiting').length;
      if (open.length === 0) {
        phase = 'final listing';
        windowTally.at = -Infinity;
        listings++;
        const last = await retrying('listing', () => discoverWindow(discoverCtx, window, options.signal));
        // A retried listing may have upserted rows in its failed attempt and report 0 new: check the rows too.
        if (last.inserted === 0 && (await retrying('ledger read', openRows)).length === 0) break;
        log.info({ found: last.inserted }, 'the last listing found recordings indexed late; continuing');
        phase = 'downloading';
        pool.notify();
        continue;
      }
      phase = waiting > 0 && waiting === open.length ? 'waiting' : 'downloading';
      await sleep(250, options.signal).catch(() => undefined);
    }
    phase = 'done';
  } catch (err) {
    if (!options.signal.aborted) {
      stopWorkers.abort(err);
      await workers;
      clearInterval(progressTimer);
      if (err instanceof CxrecError) throw err;
      throw new CxrecError('aborted', `export stopped: ${describeError(err).message}`, { cause: err });
    }
  } finally {
    stopWorkers.abort();
    await workers;
    clearInterval(progressTimer);
  }
  if (pool.fatalError) throw pool.fatalError;
  await reportProgress().catch((err: unknown) => log.debug({ err }, 'progress read failed'));

  if (!options.signal.aborted) {
    await discardAbandonedUploads(ledger, store, now(), log);
    await sweepStaging(ledger, store, options.signal, log);
  }
  const rows = await windowRows(ledger, window);
  if (settings.sidecars && !options.signal.aborted) {
    const written = await writeSidecars(store, rows, options.signal);
    log.debug({ written }, 'metadata sidecars written');
  }
  const byState: ExportSummary['byState'] = {};
  let unsettled = 0;
  for (const row of rows) {
    if (!isFinalState(row.state)) {
      unsettled++;
      continue;
    }
    const reasons = (byState[row.state] ??= {});
    const reason = row.reason ?? '';
    reasons[reason] = (reasons[reason] ?? 0) + 1;
  }
  return {
    byState,
    unsettled,
    total: rows.length,
    bytesDownloaded: bytes,
    listings,
    elapsedMs: now() - started,
    interrupted: options.signal.aborted,
  };
}

/** Rows of recordings created in the window (fallback rows included: they share the recording). */
async function windowRows(ledger: Ledger, window: { from: string; to: string }): Promise<JobRow[]> {
  return inWindow(await ledger.list({}), window);
}

function inWindow(rows: readonly JobRow[], window: { from: string; to: string }): JobRow[] {
  const from = Date.parse(window.from);
  const to = Date.parse(window.to);
  return rows.filter((r) => {
    const t = Date.parse(r.meta.createdDate);
    return t >= from && t < to;
  });
}

/** Staged uploads of rows that will not resume them (final rows, or leases long dead) are removed. */
export async function discardAbandonedUploads(
  ledger: Ledger,
  store: ObjectStore,
  now: number,
  log: Logger,
): Promise<void> {
  for (const row of await ledger.listAbandonedUploads(now)) {
    if (!isFinalState(row.state) || row.uploadToken === null) continue;
    const ref = decodeUploadRef(row.uploadToken);
    try {
      if (ref) await store.discardUpload(ref.key, ref.token);
      await ledger.clearAbandonedUpload(row, row.uploadToken, now);
    } catch (err) {
      log.warn(
        { err, recordingId: row.recordingId, channel: row.channel },
        'could not discard a staged upload',
      );
    }
  }
}

/** Leftovers of killed runs that no ledger row will resume are removed, so `.partial/` ends empty. */
export async function sweepStaging(
  ledger: Ledger,
  store: ObjectStore,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  if (!store.sweepStaging) return;
  const keepTokens = new Set<string>();
  for (const row of await ledger.list({ states: ['pending', 'downloading', 'waiting'] })) {
    const ref = row.uploadToken === null ? undefined : decodeUploadRef(row.uploadToken);
    if (ref) keepTokens.add(ref.token);
  }
  const removed = await store.sweepStaging({ signal, keepTokens });
  if (removed > 0) log.info({ removed }, 'removed staging leftovers of earlier runs');
}

export async function retryTransient<T>(
  what: string,
  fn: () => Promise<T>,
  signal: AbortSignal,
  log: Logger,
  baseMs: number,
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (signal.aborted || isFatal(err) || !isRetryable(err) || attempt >= attempts) throw err;
      const delayMs = backoffDelayMs(attempt, { baseMs, capMs: 60_000, random: Math.random });
      log.warn({ err, attempt, retryInMs: delayMs }, `${what} failed; trying again`);
      await sleep(delayMs, signal);
    }
  }
}
