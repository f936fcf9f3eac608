/**
 * What `cxrec export` and `cxrec run` share: start-up (the ledger, the
 * store and the CXone client opened, and closed, the same way), the worker
 * pool, and the housekeeping of staged uploads. Each job keeps only what
 * differs: `export-job.ts` lists one window and ends once it is settled;
 * `service-job.ts` runs the discovery loop until it is stopped.
 */
import { resolve } from 'node:path';

import type { Dispatcher } from 'undici';

import { requireCxone, requirePlatform, type Config } from '../config.js';
import { sleep } from '../cxone/clock.js';
import type { RateLimiter } from '../cxone/rate-limiter.js';
import { backoffDelayMs } from '../cxone/retry-policy.js';
import { isRetryable } from '../errors.js';
import type { Logger } from '../log.js';
import { openCxone, openState, openStore, type CxoneRuntime } from '../runtime.js';
import { isFinalState, type Ledger, type RecordingMeta } from '../state/ledger.js';
import type { ObjectStore } from '../storage/object-store.js';
import { noteRetry } from '../retry-tally.js';
import type { DiscoverContext } from './discover.js';
import { createDownloadPool, type DownloadPoolOptions } from './download-pool.js';
import type { PipelineSettings } from './pipeline-settings.js';
import type { RecordingSource } from './recording-source.js';
import { isWholeWindow, selects, type Selection } from './selection.js';
import { claimSoleProcess } from './sole-process.js';
import { decodeUploadRef } from './upload-ref.js';
import { newOwner } from '../owners.js';
import { releaseLeasesOfGoneOwners, startLedgerHeartbeat } from './owner-leases.js';
import { isFatal, type WorkerPool } from './workers.js';

/** What a job runs on. */
export interface PipelineResources {
  /** The tenant's dialect: listings and media links. */
  source: RecordingSource;
  ledger: Ledger;
  store: ObjectStore;
  /** For presigned media URLs (keep-alive, timeouts). */
  dispatcher: Dispatcher;
}

export interface OpenedPipeline extends PipelineResources {
  cxone: CxoneRuntime;
  /** The settings to run with: `config`'s, with what connecting found (e.g. the media hosts). */
  settings: PipelineSettings;
  /** Closes the store, the ledger and the client, in that order. */
  close(): Promise<void>;
}

export interface OpenPipelineOptions {
  /** Wraps the tenant's rate limiter (e.g. to measure waits); gets the ledger already open. */
  wrapLimiter?: (limiter: RateLimiter, ledger: Ledger) => RateLimiter;
  /** `export --ids/--agent/--skill/--direction`: only these recordings are written to the ledger. */
  selection?: Selection;
}

/**
 * Opens the ledger, the store and the CXone client. Missing CXone settings
 * are refused before anything is created; whatever opened before a later
 * step failed is closed again.
 */
export async function openPipeline(
  config: Config,
  log: Logger,
  options: OpenPipelineOptions = {},
): Promise<OpenedPipeline> {
  if (config.dialect === 'platform') requirePlatform(config);
  else requireCxone(config);
  const closers: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const closeOne of closers.reverse().splice(0)) await closeOne();
  };
  try {
    // A SQLite ledger serves one working process (its budget lives in it).
    if (config.stateTarget.kind === 'sqlite') {
      const claim = await claimSoleProcess(resolve(config.stateTarget.path));
      closers.push(() => claim.release());
    }
    const ledger = await openState(config);
    closers.push(() => ledger.close());
    const store = await openStore(config);
    closers.push(async () => store.close?.());
    const { wrapLimiter } = options;
    const cxone = await openCxone(
      config,
      log,
      wrapLimiter ? { wrapLimiter: (limiter) => wrapLimiter(limiter, ledger) } : {},
    );
    closers.push(() => cxone.close());
    const settings = await cxone.connect(config);
    const now = (): number => Date.now();
    const { selection } = options;
    const admit =
      selection && !isWholeWindow(selection) ? (meta: RecordingMeta) => selects(selection, meta) : undefined;
    const source = cxone.source({ ledger, settings, log, now, admit });
    return { source, cxone, settings, dispatcher: cxone.dispatcher, ledger, store, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** What the runner needs: the pool's options but its owner, which the runner makes. */
export type RunnerOptions = Omit<DownloadPoolOptions, 'owner'>;

export interface Runner {
  /** This process's lease owner id. */
  readonly owner: string;
  readonly pool: WorkerPool;
  /** For `discoverWindow` and `recheckWaiting`. */
  readonly discoverCtx: DiscoverContext;
  /** Starts the workers; they stop with `signal` or `stop()`, which resolves once they drained. */
  startWorkers(signal: AbortSignal): { stop(reason?: unknown): Promise<void> };
  /** Removes staged uploads no row will resume, then staging leftovers of killed runs. */
  housekeeping(signal: AbortSignal): Promise<void>;
  /**
   * Runs `fn` again after a fault its client could not ride out (a listing,
   * a re-check, a ledger read), a few times, before giving up.
   */
  retrying<T>(what: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T>;
}

/**
 * Registers this process in the ledger (`owner-leases.ts`), takes back
 * what earlier runs left (leases of owners that are gone, staged
 * uploads nobody will resume) and builds the worker pool.
 */
export async function startRunner(options: RunnerOptions): Promise<Runner> {
  const { ledger, store, settings, log, now } = options;
  const self = newOwner();
  const owner = self.id;
  const heartbeat = await startLedgerHeartbeat(ledger, self, log);
  await releaseLeasesOfGoneOwners(ledger, self, now(), log);
  await discardAbandonedUploads(ledger, store, now(), log);

  const pool = createDownloadPool({ ...options, owner });
  return {
    owner,
    pool,
    discoverCtx: { source: options.source, ledger, log, now },
    startWorkers(signal) {
      const stopping = new AbortController();
      const workers = pool.run(AbortSignal.any([signal, stopping.signal]));
      return {
        async stop(reason?: unknown) {
          stopping.abort(reason);
          await workers;
          // Every job of this owner is recorded: it leaves the ledger.
          await heartbeat.stop();
        },
      };
    },
    async housekeeping(signal) {
      await releaseLeasesOfGoneOwners(ledger, self, now(), log);
      await discardAbandonedUploads(ledger, store, now(), log);
      await sweepStaging(ledger, store, signal, log);
    },
    retrying: (what, fn, signal) => retryTransient(what, fn, signal, log, settings.backoffSeconds * 1000),
  };
}

/** Staged uploads of rows that will not resume them (final rows, or leases long dead) are removed. */
async function discardAbandonedUploads(
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
async function sweepStaging(
  ledger: Ledger,
  store: ObjectStore,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  if (!store.sweepStaging) return;
  const keepTokens = new Set<string>();
  // Only rows holding a token (the jobs_upload index): the backlog itself may be a million rows.
  for (const row of await ledger.list({ withUpload: true })) {
    if (isFinalState(row.state)) continue;
    const ref = row.uploadToken === null ? undefined : decodeUploadRef(row.uploadToken);
    if (ref) keepTokens.add(ref.token);
  }
  const removed = await store.sweepStaging({ signal, keepTokens });
  if (removed > 0) log.info({ removed }, 'removed staging leftovers of earlier runs');
}

async function retryTransient<T>(
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
      noteRetry(what === 'ledger read' ? 'ledger' : 'listing');
      log.debug({ err, attempt, retryInMs: delayMs }, `${what} failed; trying again`);
      await sleep(delayMs, signal);
    }
  }
}
