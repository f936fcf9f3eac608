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
import type { FinalState, JobRow, JobState, RecordingMeta, RowCounts } from '../state/ledger.js';
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
    if (total === listed && (await retrying('ledger read', openCounts)).open === 0) return true;
    log.info(
      { count: total, listed },
      'the window holds items the last listing did not see: listing it again',
    );
    return false;
  }

  const select = options.select;
  /** This window's rows (the selection's only, when there is one), in keyset pages. */
  async function* windowRows(states?: readonly JobState[]): AsyncIterable<JobRow> {
    for await (const row of ledger.iterate(states ? { states, created: window } : { created: window })) {
      if (!select || select(row.meta)) yield row;
    }
  }
  /**
   * This window's rows by state and reason: counted by the database
   * (jobs_state_created), never read, so a 200 000-recording window costs
   * no memory per tick. A selection is counted as its rows stream by.
   */
  async function windowCounts(states?: readonly JobState[]): Promise<RowCounts> {
    if (!select) return ledger.countRows(states ? { states, created: window } : { created: window });
    const counts: RowCounts = { byState: {}, byReason: {} };
    for await (const row of windowRows(states)) {
      counts.byState[row.state] = (counts.byState[row.state] ?? 0) + 1;
      if (row.reason !== null && isFinalState(row.state)) {
        const reasons = (counts.byReason[row.state] ??= {});
        reasons[row.reason] = (reasons[row.reason] ?? 0) + 1;
      }
    }
    return counts;
  }
  /** Rows of this window not settled yet, per state. */
  const openCounts = async (): Promise<{ open: number; waiting: number; downloading: number }> => {
    const { byState } = await windowCounts(workingStates);
    const waiting = byState.waiting ?? 0;
    const downloading = byState.downloading ?? 0;
    return { open: waiting + downloading + (byState.pending ?? 0), waiting, downloading };
  };
  // A whole-window count covers every row of the window: refreshed every few seconds only.
  let windowTally = { total: 0, stored: 0, at: -Infinity };
  const progressTimer = setInterval(() => {
    reportProgress().catch((err: unknown) => log.debug({ err }, 'progress read failed'));
  }, 1000);
  async function reportProgress(): Promise<void> {
    if (!options.onProgress) return;
    if (now() - windowTally.at > 5000) {
      const { byState } = await windowCounts();
      windowTally = {
        total: Object.values(byState).reduce((a, b) => a + b, 0),
        stored: byState.stored ?? 0,
        at: now(),
      };
    }
    const open = await openCounts();
    options.onProgress({
      phase: signal.aborted ? 'stopping' : phase,
      total: Math.max(windowTally.total, open.open),
      done: Math.max(0, windowTally.total - open.open),
      stored: windowTally.stored,
      waiting: open.waiting,
      downloading: open.downloading,
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
      const open = await retrying('ledger read', openCounts);
      if (open.open === 0) {
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
          (await retrying('ledger read', openCounts)).open === 0
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
      phase = open.waiting > 0 && open.waiting === open.open ? 'waiting' : 'downloading';
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
  if (settings.sidecars && !signal.aborted) {
    // Read in keyset pages: the window's rows are never all in memory.
    const written = await writeSidecars(store, windowRows(), signal);
    log.debug({ written }, 'metadata sidecars written');
  }
  const counted = await windowCounts();
  const byState: ExportSummary['byState'] = {};
  let unsettled = 0;
  let total = 0;
  for (const [state, n] of Object.entries(counted.byState)) {
    total += n;
    if (!isFinalState(state)) {
      unsettled += n;
      continue;
    }
    const reasons = { ...counted.byReason[state] };
    // Rows without a reason (stored ones) are counted under ''.
    const withReason = Object.values(reasons).reduce((a, b) => a + b, 0);
    if (n > withReason) reasons[''] = n - withReason;
    byState[state] = reasons;
  }
  return {
    byState,
    unsettled,
    total,
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
