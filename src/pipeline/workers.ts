/**
 * The worker loop: up to `concurrency` jobs in flight, each claimed from the
 * ledger under a lease that is renewed while it runs. What a job ends with
 * is written back under the same lease, so a process that lost its lease
 * (it stalled, another took over) cannot overwrite the new holder's work.
 *
 * Shutdown: when `signal` fires no new job is claimed, transfers in flight
 * are aborted (their uploads parked for a resume, never committed half
 * way), and `run` resolves once every job has written its outcome.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

import { sleep } from '../cxone/clock.js';
import { backoffDelayMs } from '../cxone/retry-policy.js';
import {
  CxrecError,
  describeError,
  failureDetail,
  failureReason,
  isAbortError,
  isRetryable,
} from '../errors.js';
import type { Logger } from '../log.js';
import type { JobRow, Ledger } from '../state/ledger.js';
import type { JobOutcome } from './job-outcome.js';
import { nextRecheckAt, processingGivenUp } from './recording-policy.js';

/** Errors that no retry of any job can fix: stop the whole run and say why. */
const fatalCodes = new Set([
  'auth_failed',
  'scope_missing',
  'permission_missing',
  'tenant_unknown',
  'unreachable',
  'config_invalid',
  'ledger',
]);

export function isFatal(err: unknown): err is CxrecError {
  // A ledger that is briefly unreachable (a PostgreSQL restart) is waited out, not fatal.
  return err instanceof CxrecError && fatalCodes.has(err.code) && !(err.code === 'ledger' && err.retryable);
}

/** `host:pid:random`: unique per process, and tells which local leases belong to a dead process. */
export function newOwnerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export interface WorkerPoolOptions {
  ledger: Ledger;
  owner: string;
  concurrency: number;
  /** @default 60000 */
  leaseMs?: number;
  /** Job attempts (transient faults) before a row ends `failed`. @default 6 */
  maxJobAttempts?: number;
  backoff: { baseMs: number; capMs: number; random: () => number };
  /** Runs one job; `signal` fires on shutdown or when the lease is lost. */
  handle(job: JobRow, signal: AbortSignal): Promise<JobOutcome>;
  /**
   * Which errors stop the pool. The service passes one that rides out a
   * CXone outage (`unreachable`) instead of stopping. @default isFatal
   */
  isFatal?: (err: unknown) => err is CxrecError;
  /** How a recording found not Available after all waits (CXREC_POLL_SECONDS, CXREC_MAX_PROCESSING_MINUTES). */
  waiting: { pollSeconds: number; maxProcessingMinutes: number };
  /** Called for an outcome of kind `fallback` before the row is finished. */
  onFallback(job: JobRow): Promise<void>;
  log: Logger;
  now(): number;
}

export class WorkerPool {
  private readonly inFlight = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  private fatal: CxrecError | undefined;
  private readonly leaseMs: number;
  private readonly maxJobAttempts: number;
  private readonly stops: (err: unknown) => err is CxrecError;

  constructor(private readonly options: WorkerPoolOptions) {
    this.stops = options.isFatal ?? isFatal;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.maxJobAttempts = options.maxJobAttempts ?? 6;
  }

  get busy(): number {
    return this.inFlight.size;
  }

  /** The first fatal error a job met, if any; `run` stops claiming once one is set. */
  get fatalError(): CxrecError | undefined {
    return this.fatal;
  }

  /** Wakes an idle pool (new rows were discovered or became due). */
  notify(): void {
    this.wake?.();
  }

  /** Claims and runs jobs until `signal` fires or a fatal error; then drains. */
  async run(signal: AbortSignal): Promise<void> {
    const { ledger, owner, concurrency } = this.options;
    while (!signal.aborted && !this.fatal) {
      const free = concurrency - this.inFlight.size;
      let claimed: JobRow[] = [];
      if (free > 0) {
        try {
          claimed = await ledger.claim({
            owner,
            limit: free,
            leaseMs: this.leaseMs,
            now: this.options.now(),
          });
        } catch (err) {
          if (this.stops(err) || !isRetryable(err)) {
            this.fatal ??=
              err instanceof CxrecError
                ? err
                : new CxrecError('ledger', 'claiming jobs failed', { cause: err });
            break;
          }
          this.options.log.warn({ err }, 'claiming jobs failed; trying again');
          await this.idle(signal, 2_000);
          continue;
        }
        for (const job of claimed) this.start(job, signal);
      }
      if (claimed.length === 0 || this.inFlight.size >= concurrency) {
        await this.idle(signal, this.inFlight.size >= concurrency ? 5_000 : 250);
      }
    }
    await Promise.allSettled([...this.inFlight]);
  }

  private start(job: JobRow, runSignal: AbortSignal): void {
    const p = this.runJob(job, runSignal).finally(() => {
      this.inFlight.delete(p);
      this.notify();
    });
    this.inFlight.add(p);
  }

  private async runJob(job: JobRow, runSignal: AbortSignal): Promise<void> {
    const { ledger, owner, log } = this.options;
    const key = { recordingId: job.recordingId, channel: job.channel };
    const lost = new AbortController();
    const signal = AbortSignal.any([runSignal, lost.signal]);
    const renew = setInterval(() => {
      ledger.renewLease(key, owner, this.leaseMs, this.options.now()).then(
        (held) => {
          if (!held) lost.abort(new CxrecError('aborted', 'lease lost', { context: key }));
        },
        (err: unknown) => log.warn({ err, ...key }, 'lease renewal failed'),
      );
    }, this.leaseMs / 3);

    let outcome: JobOutcome;
    try {
      outcome = await this.options.handle(job, signal);
    } catch (err) {
      outcome = this.classifyThrown(err);
    } finally {
      clearInterval(renew);
    }

    try {
      await this.record(job, outcome, signal.aborted);
    } catch (err) {
      if (this.stops(err)) this.fatal ??= err;
      log.error({ err, ...key }, 'could not record the outcome of a job');
    }
  }

  private classifyThrown(err: unknown): JobOutcome {
    if (this.stops(err)) {
      this.fatal ??= err;
      return { kind: 'retry', error: err };
    }
    if (isAbortError(err)) return { kind: 'retry', error: err };
    if (isRetryable(err)) return { kind: 'retry', error: err };
    return {
      kind: 'final',
      state: 'failed',
      reason: failureReason(err),
      detail: failureDetail(err),
      error: err,
    };
  }

  private async record(job: JobRow, outcome: JobOutcome, aborted: boolean): Promise<void> {
    const { ledger, owner, log } = this.options;
    const key = { recordingId: job.recordingId, channel: job.channel };
    const now = this.options.now();
    switch (outcome.kind) {
      case 'final': {
        const error = outcome.error === undefined ? {} : errorFields(outcome.error);
        await ledger.finish(key, owner, {
          state: outcome.state,
          reason: outcome.reason,
          ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
          ...(outcome.stored ? { stored: outcome.stored } : {}),
          ...error,
        });
        if (outcome.state === 'failed') log.warn({ ...key, reason: outcome.reason }, 'recording failed');
        return;
      }
      case 'fallback':
        await this.options.onFallback(job);
        await ledger.finish(key, owner, { state: 'media_unavailable', reason: outcome.reason });
        return;
      case 'waiting': {
        // The Processing trap: wait like any recording still processing, with
        // backoff, and give up at the same deadline.
        const { waiting } = this.options;
        const givenUp = processingGivenUp(waiting, job.meta.createdDate, outcome.status, now);
        if (givenUp) {
          await ledger.finish(key, owner, givenUp);
          return;
        }
        await ledger.defer(key, owner, {
          state: 'waiting',
          nextRunAt: nextRecheckAt(waiting.pollSeconds, job.firstSeenAt, now),
          countAttempt: false,
          status: outcome.status,
          errorCode: 'not_available',
          errorMessage: outcome.reason,
        });
        return;
      }
      case 'later':
        // Not ready yet, and only asking again tells (the platform's
        // playback): due again at the time the dialect chose, no attempt used.
        await ledger.defer(key, owner, {
          state: 'pending',
          nextRunAt: outcome.at,
          countAttempt: false,
          status: outcome.status,
          errorCode: 'not_available',
          errorMessage: outcome.reason,
        });
        return;
      case 'retry': {
        // A shutdown is not the job's fault: it goes back as it was, due at once.
        if (aborted || isAbortError(outcome.error) || this.stops(outcome.error)) {
          await ledger.defer(key, owner, { state: 'pending', nextRunAt: now, countAttempt: false });
          return;
        }
        const { code, message } = describeError(outcome.error);
        // CXone not answering at all is an outage, not this recording's fault:
        // wait it out without using up the recording's attempts.
        const outage = outcome.error instanceof CxrecError && outcome.error.code === 'unreachable';
        const attempts = outage ? job.attempts : job.attempts + 1;
        if (attempts >= this.maxJobAttempts) {
          await ledger.finish(key, owner, {
            state: 'failed',
            reason: `gave up after ${attempts} attempts: ${code}`,
            detail: message,
            errorCode: code,
            errorMessage: message,
          });
          log.warn({ ...key, code, message }, 'recording failed after retries');
          return;
        }
        const retryAfter = outcome.error instanceof CxrecError ? (outcome.error.retryAfterMs ?? 0) : 0;
        const delay = Math.max(retryAfter, backoffDelayMs(Math.max(attempts, 1), this.options.backoff));
        await ledger.defer(key, owner, {
          state: 'pending',
          nextRunAt: now + delay,
          countAttempt: !outage,
          errorCode: code,
          errorMessage: message,
        });
        log.info({ ...key, code, attempts, retryInMs: delay }, 'job deferred after a transient fault');
        return;
      }
    }
  }

  private async idle(signal: AbortSignal, ms: number): Promise<void> {
    const woken = new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    try {
      await Promise.race([sleep(ms, signal), woken]);
    } catch (err) {
      if (!isAbortError(err)) throw err;
    } finally {
      this.wake = undefined;
    }
  }
}

function errorFields(err: unknown): { errorCode: string; errorMessage: string } {
  const { code, message } = describeError(err);
  return { errorCode: code, errorMessage: message };
}

/**
 * Rows leased by a process of this host that no longer runs (killed, crashed)
 * go back to `pending` at once instead of waiting out their lease.
 */
export async function releaseDeadLocalLeases(ledger: Ledger, now: number, log: Logger): Promise<number> {
  const host = hostname();
  let released = 0;
  for (const row of await ledger.list({ states: ['downloading'] })) {
    const [owner, pid] = row.leaseOwner?.split(':') ?? [];
    if (owner !== host || pid === undefined || Number(pid) === process.pid || processAlive(Number(pid)))
      continue;
    const ok = await ledger.defer(row, row.leaseOwner as string, {
      state: 'pending',
      nextRunAt: now,
      countAttempt: true,
      errorCode: 'worker_died',
      errorMessage: `process ${pid} died while holding the job`,
    });
    if (ok) released++;
  }
  if (released > 0) log.info({ released }, 'took back jobs of a process that died');
  return released;
}

/** Whether a process of this host (pid namespace) runs. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
