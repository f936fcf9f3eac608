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
import { noteRetry } from '../retry-tally.js';
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

/** A running job's lease. */
export interface JobLease {
  /** Renews the lease now; throws a retryable error (and aborts the job) when it is not held any more. */
  confirm(): Promise<void>;
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
  /**
   * Runs one job; `signal` fires on shutdown or when the lease is lost.
   * `lease.confirm()` renews the lease right before the job commits, and
   * throws (aborting `signal`) when it is lost or cannot be confirmed.
   */
  handle(job: JobRow, signal: AbortSignal, lease: JobLease): Promise<JobOutcome>;
  /**
   * Which errors stop the pool. The service passes one that rides out a
   * CXone outage (`unreachable`) instead of stopping. @default isFatal
   */
  isFatal?: (err: unknown) => err is CxrecError;
  /** How a recording found not Available after all waits (CXREC_POLL_SECONDS, CXREC_MAX_PROCESSING_MINUTES). */
  waiting: { pollSeconds: number; maxProcessingMinutes: number };
  /** Called for an outcome of kind `fallback` before the row is finished. */
  onFallback(job: JobRow): Promise<void>;
  /** After a row was written `failed` (a person should look: `run` notifies). */
  onFailed?: (job: JobRow, reason: string) => void;
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
    let claimedAt = performance.now();
    while (!signal.aborted && !this.fatal) {
      const free = concurrency - this.inFlight.size;
      let claimed: JobRow[] = [];
      if (free > 0) {
        // The lease runs from before the claim was sent (local monotonic clock).
        claimedAt = performance.now();
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
          noteRetry('ledger');
          this.options.log.debug({ err }, 'claiming jobs failed; trying again');
          await this.idle(signal, 2_000);
          continue;
        }
        for (const job of claimed) this.start(job, signal, claimedAt);
      }
      if (claimed.length === 0 || this.inFlight.size >= concurrency) {
        await this.idle(signal, this.inFlight.size >= concurrency ? 5_000 : 250);
      }
    }
    await Promise.allSettled([...this.inFlight]);
  }

  private start(job: JobRow, runSignal: AbortSignal, claimedAt: number): void {
    const p = this.runJob(job, runSignal, claimedAt).finally(() => {
      this.inFlight.delete(p);
      this.notify();
    });
    this.inFlight.add(p);
  }

  /**
   * Runs one job under its lease. The lease is renewed every sixth of its
   * length; when it is lost (the ledger says another owner holds it) or
   * cannot be renewed before it would expire (a ledger outage; measured on
   * this process's monotonic clock from when the last successful renewal
   * was sent, so no other clock is trusted), the job is aborted: its
   * transfer stops, its upload is parked, and the row is left for the owner
   * that claims it next to resume.
   */
  private async runJob(job: JobRow, runSignal: AbortSignal, claimedAt: number): Promise<void> {
    const { ledger, owner, log } = this.options;
    const key = { recordingId: job.recordingId, channel: job.channel };
    const lost = new AbortController();
    const signal = AbortSignal.any([runSignal, lost.signal]);
    const lose = (why: string): void => {
      if (lost.signal.aborted) return;
      log.warn({ ...key }, `${why}; stopping the job`);
      lost.abort(new CxrecError('aborted', why, { context: key }));
    };
    let heldUntil = claimedAt + this.leaseMs;
    let lastSent = claimedAt;
    /** Renews once; true when held. */
    const renewNow = async (): Promise<boolean> => {
      const sent = performance.now();
      lastSent = sent;
      const held = await ledger.renewLease(key, owner, this.leaseMs, this.options.now());
      if (held) heldUntil = Math.max(heldUntil, sent + this.leaseMs);
      else lose('lease lost to another owner');
      return held;
    };
    // Stop a little before the lease expires, so the next owner never overlaps.
    const margin = this.leaseMs / 6;
    const renew = setInterval(() => {
      if (performance.now() >= heldUntil - margin) {
        lose('lease could not be renewed before it expired');
        return;
      }
      if (performance.now() - lastSent < this.leaseMs / 3) return;
      renewNow().catch((err: unknown) => {
        // Counted, not printed: a lease that stays unrenewable stops the job (warned once, above).
        noteRetry('ledger');
        log.debug({ err, ...key }, 'lease renewal failed');
      });
    }, this.leaseMs / 6);
    const lease: JobLease = {
      confirm: async () => {
        let held: boolean;
        try {
          held = !signal.aborted && (await renewNow());
        } catch (err) {
          lose('lease could not be confirmed before commit');
          throw new CxrecError('aborted', 'lease could not be confirmed before commit', {
            cause: err,
            context: key,
          });
        }
        if (!held || performance.now() >= heldUntil - margin) {
          lose('lease lost before commit');
          throw new CxrecError('aborted', 'lease lost before commit; not committing', { context: key });
        }
      },
    };

    let outcome: JobOutcome;
    try {
      outcome = await this.options.handle(job, signal, lease);
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
        if (outcome.state === 'failed') {
          log.warn({ ...key, reason: outcome.reason }, 'recording failed');
          this.options.onFailed?.(job, outcome.reason);
        }
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
          const reason = `gave up after ${attempts} attempts: ${code}`;
          await ledger.finish(key, owner, {
            state: 'failed',
            reason,
            detail: message,
            errorCode: code,
            errorMessage: message,
          });
          log.warn({ ...key, code, message }, 'recording failed after retries');
          this.options.onFailed?.(job, reason);
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
        noteRetry('job');
        log.debug({ ...key, code, attempts, retryInMs: delay }, 'job deferred after a transient fault');
        return;
      }
    }
  }

  /**
   * Waits `ms`, until `notify()`, or until `signal` fires. A wake-up ends the
   * timer and the abort listener too: a sleep left running after each wake
   * piled up listeners on the run's signal (Node's MaxListenersExceededWarning
   * on the operator's terminal).
   */
  private async idle(signal: AbortSignal, ms: number): Promise<void> {
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        if (this.wake === finish) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      signal.addEventListener('abort', finish, { once: true });
      this.wake = finish;
    });
  }
}

function errorFields(err: unknown): { errorCode: string; errorMessage: string } {
  const { code, message } = describeError(err);
  return { errorCode: code, errorMessage: message };
}
