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
import { sleep } from '../cxone/clock.js';
import { CxrecError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FinalState, JobRow, JobState, RecordingMeta } from '../state/ledger.js';
import { isFinalState, workingStates } from '../state/ledger.js';
import { discoverWindow, recheckWaiting } from './discover.js';
import type { PipelineSettings } from './pipeline-settings.js';
import { startRunner, type PipelineResources } from './runner.js';
import { writeSidecars } from './sidecars.js';

export interface ExportOptions extends PipelineResources {
  since: Date;
  until: Date;
  settings: PipelineSettings;
  log: Logger;
  signal: AbortSignal;
  /** Called with each progress snapshot (about once a second). */
  onProgress?: (progress: ExportProgress) => void;
  now?: () => number;
  /**
   * The selection (`selection.ts`): only rows it takes count for the end
   * and the summary (the ledger may hold other rows of the window).
   */
  select?: (meta: RecordingMeta) => boolean;
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
  const { ledger, store, log, settings, signal } = options;
  const window = { from: options.since.toISOString(), to: options.until.toISOString() };
  let bytes = 0;
  let phase: ExportProgress['phase'] = 'listing';
  let listings = 0;

  const runner = await startRunner({
    ...options,
    now,
    onBytes: (n) => {
      bytes += n;
    },
  });
  const { pool, discoverCtx } = runner;
  const retrying = <T>(what: string, fn: () => Promise<T>): Promise<T> => runner.retrying(what, fn, signal);
  const workers = runner.startWorkers(signal);

  /**
   * The cheap form of the last listing (contract §3 of the platform API): a
   * count of the window equal to what a complete listing saw means nothing
   * was indexed since, as the index only grows. Dialects that cannot count
   * list the window again.
   */
  async function windowUnchanged(listed: number | undefined): Promise<boolean> {
    const count = discoverCtx.source.countWindow?.bind(discoverCtx.source);
    if (listed === undefined || count === undefined) return false;
    listings++;
    const total = await retrying('count', () => count(window, signal));
    if (total === listed && (await retrying('ledger read', openRows)).length === 0) return true;
    log.info(
      { count: total, listed },
      'the window holds items the last listing did not see: listing it again',
    );
    return false;
  }

  const select = options.select;
  const windowRows = async (states?: readonly JobState[]): Promise<JobRow[]> => {
    const rows = await ledger.list(states ? { states, created: window } : { created: window });
    return select ? rows.filter((r) => select(r.meta)) : rows;
  };
  /** Rows of this window not settled yet: few, so cheap to read every tick. */
  const openRows = (): Promise<JobRow[]> => windowRows(workingStates);
  // A whole-window count reads every row of the window: refreshed every few seconds only.
  let windowTally = { total: 0, stored: 0, at: -Infinity };
  const progressTimer = setInterval(() => {
    reportProgress().catch((err: unknown) => log.debug({ err }, 'progress read failed'));
  }, 1000);
  async function reportProgress(): Promise<void> {
    if (!options.onProgress) return;
    if (now() - windowTally.at > 5000) {
      const rows = await windowRows();
      windowTally = {
        total: rows.length,
        stored: rows.filter((r) => r.state === 'stored').length,
        at: now(),
      };
    }
    const open = await openRows();
    options.onProgress({
      phase: signal.aborted ? 'stopping' : phase,
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
    // Items the last listing that the index did not move under saw: what a count of the window must match.
    let completeListing = completeCount(
      await retrying('listing', () => discoverWindow(discoverCtx, window, signal)),
    );
    pool.notify();
    phase = 'downloading';
    for (;;) {
      if (pool.fatalError) throw pool.fatalError;
      signal.throwIfAborted();
      await retrying('re-check', () => recheckWaiting(discoverCtx, signal)).then((r) => {
        if (r.becameAvailable > 0) pool.notify();
      });
      // Only this window's rows decide the end: a shared ledger may hold others' work.
      const open = await retrying('ledger read', openRows);
      const waiting = open.filter((r) => r.state === 'waiting').length;
      if (open.length === 0) {
        phase = 'final listing';
        windowTally.at = -Infinity;
        if (await windowUnchanged(completeListing)) break;
        listings++;
        const last = await retrying('listing', () => discoverWindow(discoverCtx, window, signal));
        completeListing = completeCount(last);
        // A retried listing may have upserted rows in its failed attempt and report 0 new: check the rows too.
        // One the index moved under is not complete either: what was indexed meanwhile may sit behind its offsets.
        if (
          last.inserted === 0 &&
          last.shifted !== true &&
          (await retrying('ledger read', openRows)).length === 0
        )
          break;
        log.info(
          { found: last.inserted, shifted: last.shifted === true },
          'the last listing found recordings indexed late; continuing',
        );
        phase = 'downloading';
        pool.notify();
        continue;
      }
      phase = waiting > 0 && waiting === open.length ? 'waiting' : 'downloading';
      await sleep(250, signal).catch(() => undefined);
    }
    phase = 'done';
  } catch (err) {
    if (!signal.aborted) {
      await workers.stop(err);
      clearInterval(progressTimer);
      if (err instanceof CxrecError) throw err;
      throw new CxrecError('aborted', `export stopped: ${describeError(err).message}`, { cause: err });
    }
  } finally {
    await workers.stop();
    clearInterval(progressTimer);
  }
  if (pool.fatalError) throw pool.fatalError;
  await reportProgress().catch((err: unknown) => log.debug({ err }, 'progress read failed'));

  if (!signal.aborted) await runner.housekeeping(signal);
  const rows = await windowRows();
  if (settings.sidecars && !signal.aborted) {
    const written = await writeSidecars(store, rows, signal);
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
    interrupted: signal.aborted,
  };
}

/** What a listing saw, when it counts as complete (the index did not move under it). */
function completeCount(result: { listed: number; shifted?: boolean }): number | undefined {
  return result.shifted === true ? undefined : result.listed;
}
