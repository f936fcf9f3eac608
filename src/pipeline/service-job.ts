/**
 * `cxrec run`: the service. Every process downloads; one at a time (the
 * holder of the ledger's `discoverer` lease) lists new recordings and
 * re-checks the ones still processing, so several processes sharing a
 * PostgreSQL ledger spend the tenant's budget on listings once, not once
 * each. If the discoverer dies, another process takes the lease when it
 * expires.
 *
 * Each pass lists from the last watermark minus an overlap (15 minutes, and
 * a whole day about once an hour), so recordings the index shows late
 * (contract §2) are still found; a first pass, with no
 * watermark yet, lists everything still within 70 % of the retention, so a
 * freshly started service leaves nothing behind that can still be fetched.
 */
import { sleep } from '../cxone/clock.js';
import { CxrecError, describeError, isRetryable } from '../errors.js';
import type { Logger } from '../log.js';
import type { Channel, JobRow } from '../state/ledger.js';
import { discoverUpdatedSince, discoverWindow, recheckWaiting, type DiscoverResult } from './discover.js';
import type { JobOutcome } from './job-outcome.js';
import type { PipelineSettings } from './pipeline-settings.js';
import { oldestFetchable } from './recording-policy.js';
import { startRunner, type PipelineResources } from './runner.js';
import { writeSidecars } from './sidecars.js';
import { isFatal } from './workers.js';

const DAY_MS = 86_400_000;
/** How far back each pass re-lists behind the watermark, for late-indexed recordings. */
export const lateIndexOverlapMs = 15 * 60_000;
/**
 * About once an hour a pass looks back a whole day instead, for recordings
 * the index shows later than the overlap covers (the contract puts no bound
 * on it). A day of a busy tenant is a few dozen search calls an hour.
 */
export const deepLookbackMs = DAY_MS;
const deepPassEveryMs = 3_600_000;
/** Listings of one window in a row, at most, while each still finds something new. */
const maxRelistings = 5;
const watermarkName = 'run';

/** A service rides out a CXone outage (it keeps retrying, and `/readyz` says why); bad credentials still stop it. */
function stopsService(err: unknown): err is CxrecError {
  return isFatal(err) && err.code !== 'unreachable';
}
const discovererLease = 'discoverer';

export interface ServiceOptions extends PipelineResources {
  settings: PipelineSettings;
  log: Logger;
  /** Stops the service: no new claims, transfers parked, the lease released. */
  signal: AbortSignal;
  now?: () => number;
  onJobDone?: (outcome: JobOutcome, durationMs: number) => void;
  onBytes?: (n: number) => void;
  /** After a row was written `failed`. */
  onFailed?: (job: JobRow, reason: string) => void;
  /** After every discovery pass this process ran. */
  onPass?: (pass: { listed: number; inserted: number; from: string; to: string }) => void;
}

export interface ServiceState {
  /** The service loop has run once (ledger and storage answered). */
  started: boolean;
  /** Whether this process holds the discoverer lease now. */
  discoverer: boolean;
  /** The last error a discovery pass met, cleared by the next good pass. */
  lastError: string | undefined;
  passes: number;
}

export async function runService(options: ServiceOptions, state: ServiceState): Promise<void> {
  const now = options.now ?? (() => Date.now());
  const { ledger, store, log, settings, signal } = options;
  const stopping = (): boolean => signal.aborted;
  const leaseMs = Math.max(60_000, 3 * settings.discoverSeconds * 1000);
  const deepEvery = Math.max(1, Math.round(deepPassEveryMs / (settings.discoverSeconds * 1000)));

  /** Recordings with a channel settled since the last sidecar pass. */
  const settled = new Set<string>();
  const runner = await startRunner({
    ...options,
    now,
    onJobDone: (outcome, ms, job) => {
      if (outcome.kind === 'final' || outcome.kind === 'fallback') settled.add(job.recordingId);
      options.onJobDone?.(outcome, ms);
    },
    isFatal: stopsService,
  });
  const { owner, pool, discoverCtx } = runner;
  const retrying = <T>(what: string, fn: () => Promise<T>): Promise<T> => runner.retrying(what, fn, signal);
  // The pool stops with the service, and also when the loop below ends on a fatal error.
  const workers = runner.startWorkers(signal);
  log.info(
    { owner, concurrency: settings.concurrency, discoverSeconds: settings.discoverSeconds },
    'service started',
  );

  try {
    while (!signal.aborted) {
      if (pool.fatalError) throw pool.fatalError;
      try {
        state.discoverer = await ledger.acquireLease(discovererLease, owner, leaseMs, now());
        if (state.discoverer) {
          // A first pass over the whole retention can outlast the lease: keep it while listing.
          const renew = setInterval(() => {
            ledger.acquireLease(discovererLease, owner, leaseMs, now()).catch((err: unknown) => {
              log.warn({ err }, 'renewing the discoverer lease failed');
            });
          }, leaseMs / 3);
          try {
            await discoveryPass();
          } finally {
            clearInterval(renew);
          }
          await runner.housekeeping(signal);
          const rechecked = await retrying('re-check', () => recheckWaiting(discoverCtx, signal));
          if (rechecked.becameAvailable > 0) pool.notify();
          state.lastError = undefined;
        }
      } catch (err) {
        // TypeScript keeps `signal.aborted` narrowed from the loop test across awaits; ask again.
        if (stopping()) break;
        // A bug (an error that is not ours and not transient) stops the service rather than spin.
        if (stopsService(err) || (!(err instanceof CxrecError) && !isRetryable(err))) throw err;
        state.lastError = describeError(err).message;
        log.warn({ err }, 'discovery pass failed; trying again at the next pass');
      }
      if (settings.sidecars && settled.size > 0) {
        await writeSettledSidecars().catch((err: unknown) => {
          log.warn({ err }, 'writing metadata sidecars failed; trying again at the next pass');
        });
      }
      state.started = true;
      await sleep(settings.discoverSeconds * 1000, signal).catch(() => undefined);
    }
  } finally {
    await workers.stop();
    if (settings.sidecars && settled.size > 0) {
      await writeSettledSidecars().catch((err: unknown) =>
        log.warn({ err }, 'writing metadata sidecars failed'),
      );
    }
    await ledger.releaseLease(discovererLease, owner).catch(() => undefined);
    state.discoverer = false;
    log.info({ owner }, 'service stopped');
  }
  if (pool.fatalError) throw pool.fatalError;

  async function writeSettledSidecars(): Promise<void> {
    const ids = [...settled];
    settled.clear();
    try {
      await writeSidecarsOf(ids);
    } catch (err) {
      // Owed still: tried again at the next pass.
      for (const id of ids) settled.add(id);
      throw err;
    }
  }

  async function writeSidecarsOf(ids: readonly string[]): Promise<void> {
    const wanted = new Set<Channel>([...settings.channels, 'combined']);
    const rows: JobRow[] = [];
    for (const recordingId of ids) {
      for (const channel of wanted) {
        const row = await ledger.get({ recordingId, channel });
        if (row) rows.push(row);
      }
    }
    await writeSidecars(store, rows, signal);
  }

  async function discoveryPass(): Promise<void> {
    const to = new Date(now());
    const watermark = await ledger.getWatermark(watermarkName);
    const lookback = state.passes % deepEvery === deepEvery - 1 ? deepLookbackMs : lateIndexOverlapMs;
    const from =
      watermark === undefined
        ? new Date(oldestFetchable(settings, to.getTime()))
        : new Date(Math.min(Date.parse(watermark), to.getTime()) - lookback);
    const window = { from: from.toISOString(), to: to.toISOString() };
    const { source } = discoverCtx;
    // A dialect that lists by update time (the platform) does so after the
    // first pass: a call shows up in listings only once it ended, so a
    // window of start times behind the watermark would miss long calls.
    const byUpdate = watermark !== undefined && source.listUpdatedSince !== undefined;
    const list = (): Promise<DiscoverResult> =>
      retrying('listing', () =>
        byUpdate
          ? discoverUpdatedSince(discoverCtx, window.from, signal)
          : discoverWindow(discoverCtx, window, signal),
      );
    // Inserts while paging shift items across pages, so a listing that found
    // something new may have skipped something else (contract §2): as export
    // does, list the window again until a listing finds nothing new, and only
    // then move the watermark past it. A one-page listing cannot shift, so
    // the usual pass (a minute of new recordings) costs one call, not two.
    const result = await list();
    let inserted = result.inserted;
    const paged = result.listed > source.pageSize;
    let more = result.inserted > 0 || result.shifted === true;
    // A listing the index did not move under is confirmed by a count of the window (one call, not every page).
    if (paged && more && !byUpdate && result.shifted !== true && source.countWindow !== undefined) {
      const count = source.countWindow.bind(source);
      const total = await retrying('count', () => count(window, signal));
      if (total === result.listed) more = false;
    }
    for (let again = 0; paged && more && again < maxRelistings; again++) {
      const next = await list();
      inserted += next.inserted;
      more = next.inserted > 0 || next.shifted === true;
    }
    // The platform's poll time is the server's clock: the next pass lists from it.
    await ledger.setWatermark(watermarkName, byUpdate ? (result.pollTime ?? window.to) : window.to);
    state.passes++;
    if (inserted > 0) pool.notify();
    log.info({ ...window, listed: result.listed, new: inserted }, 'discovery pass');
    options.onPass?.({ listed: result.listed, inserted, ...window });
  }
}
