/**
 * Callers waiting for a rate-limit slot, served first come first served,
 * each free to leave through its own `AbortSignal` (the model is p-queue's
 * queue, where every task carries its signal). The in-process limiter and
 * the PostgreSQL one both queue their callers here, so the FIFO order, the
 * abort wiring and the removal of listeners (the process shutdown signal
 * lives for hours and must not collect them) are written once.
 */
import { abortedError } from './clock.js';

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export interface WaiterQueueOptions {
  /** Named in the `aborted` error: `${what} was cancelled`. */
  what: string;
  /** Called after a waiter left by its signal: the one behind it may be servable now. @default none */
  onAbort?: () => void;
}

export class WaiterQueue<T> {
  readonly #waiters: Waiter<T>[] = [];
  readonly #what: string;
  readonly #onAbort: (() => void) | undefined;

  constructor(options: WaiterQueueOptions) {
    this.#what = options.what;
    this.#onAbort = options.onAbort;
  }

  /** Callers waiting now. */
  get size(): number {
    return this.#waiters.length;
  }

  /**
   * Joins the queue. Settles with the value `serve` hands this caller, with
   * the error of `rejectAll`, or with an `aborted` error when `signal`
   * fires first (at once if it already has).
   */
  wait(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortedError(signal, this.#what));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(abortedError(signal, this.#what));
          this.#onAbort?.();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  /** Hands `value` to the caller waiting longest; `false` when nobody waits (the value is not taken). */
  serve(value: T): boolean {
    const waiter = this.#waiters.shift();
    if (!waiter) return false;
    detach(waiter);
    waiter.resolve(value);
    return true;
  }

  /** Fails every waiting caller with `err` and empties the queue. */
  rejectAll(err: unknown): void {
    for (const waiter of this.#waiters.splice(0)) {
      detach(waiter);
      waiter.reject(err);
    }
  }
}

function detach<T>(waiter: Waiter<T>): void {
  if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
}
