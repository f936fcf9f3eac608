/**
 * The worker pool every command that downloads runs (`export`, `run`):
 * jobs claimed from the ledger, each fetched by `downloadJob`, its staged
 * upload recorded under the job's lease.
 */
import type { Dispatcher } from 'undici';

import type { CxrecError } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobRow, Ledger } from '../state/ledger.js';
import type { ObjectStore } from '../storage/object-store.js';
import { downloadJob, type DownloadContext } from './download.js';
import type { JobOutcome } from './job-outcome.js';
import type { PipelineSettings } from './pipeline-settings.js';
import type { RecordingSource } from './recording-source.js';
import { WorkerPool } from './workers.js';

export interface DownloadPoolOptions {
  source: RecordingSource;
  ledger: Ledger;
  store: ObjectStore;
  dispatcher: Dispatcher;
  settings: PipelineSettings;
  owner: string;
  log: Logger;
  now: () => number;
  /** Media bytes received, as they arrive. */
  onBytes?: (n: number) => void;
  /** Every job's outcome and how long it took. */
  onJobDone?: (outcome: JobOutcome, durationMs: number, job: JobRow) => void;
  /** Which errors stop the pool. @default isFatal */
  isFatal?: (err: unknown) => err is CxrecError;
  /** After a row was written `failed`. */
  onFailed?: (job: JobRow, reason: string) => void;
}

export function createDownloadPool(options: DownloadPoolOptions): WorkerPool {
  const { ledger, owner, settings, now } = options;
  const backoff = { baseMs: settings.backoffSeconds * 1000, capMs: 60_000, random: Math.random };
  return new WorkerPool({
    ledger,
    owner,
    concurrency: settings.concurrency,
    waiting: { pollSeconds: settings.pollSeconds, maxProcessingMinutes: settings.maxProcessingMinutes },
    ...(options.isFatal ? { isFatal: options.isFatal } : {}),
    ...(options.onFailed ? { onFailed: options.onFailed } : {}),
    backoff,
    log: options.log,
    now,
    handle: async (job, signal, lease) => {
      const ctx: DownloadContext = {
        source: options.source,
        store: options.store,
        dispatcher: options.dispatcher,
        mediaHosts: settings.mediaHosts,
        layout: settings.layout,
        backoff,
        log: options.log,
        now,
        ...(options.onBytes ? { onBytes: options.onBytes } : {}),
        confirmLease: () => lease.confirm(),
        recordUpload: async (upload) => {
          await ledger.setUpload(job, owner, upload);
        },
      };
      const started = now();
      const outcome = await downloadJob(job, ctx, signal);
      options.onJobDone?.(outcome, now() - started, job);
      return outcome;
    },
    onFallback: async (job) => {
      await ledger.upsertDiscovered([
        {
          recordingId: job.recordingId,
          channel: 'combined',
          meta: job.meta,
          state: 'pending',
          nextRunAt: now(),
        },
      ]);
    },
  });
}
