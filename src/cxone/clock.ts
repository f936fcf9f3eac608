/**
 * Time as the rate limiter and the token cache see it, injectable so the
 * unit tests can drive a fake clock instead of sleeping.
 */
import { CxrecError } from '../errors.js';

export interface Clock {
  /**
   * Milliseconds on a monotonic scale. Only differences are used: the
   * limiter's window and a token's lifetime must not jump when the wall
   * clock is adjusted (NTP step, DST has no effect anyway).
   */
  now(): number;
  /** Runs `fn` after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/**
 * Node's timers hold at most 2^31 − 1 ms (about 24.8 days); a longer delay
 * fires after 1 ms, so a wait computed from a hostile value would spin.
 * Longer waits are chained in steps of at most this.
 */
export const maxTimerMs = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    let timer: NodeJS.Timeout;
    const arm = (left: number): void => {
      const step = Math.min(Math.max(0, Number.isFinite(left) ? left : maxTimerMs), maxTimerMs);
      timer = setTimeout(() => {
        if (left > maxTimerMs) arm(left - maxTimerMs);
        else fn();
      }, step);
    };
    arm(ms);
    return () => clearTimeout(timer);
  },
};

/** The error every abortable wait in the client rejects with. */
export function abortedError(signal: AbortSignal, what: string): CxrecError {
  return new CxrecError('aborted', `${what} was cancelled`, { cause: signal.reason });
}

/**
 * Waits `ms` on `clock`, or rejects with an `aborted` error as soon as
 * `signal` fires. The abort listener is removed either way, so long-lived
 * signals (the process shutdown signal) do not collect listeners.
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortedError(signal, 'wait'));
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      reject(abortedError(signal as AbortSignal, 'wait'));
    };
    const cancel = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
