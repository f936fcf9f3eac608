/**
 * One fetch shared by every caller that needs its result at the same
 * moment (a token, a discovery document). The fetch is not tied to the
 * signal of the caller that happened to start it: it is aborted only when
 * every caller waiting for it has given up.
 */
import { abortedError } from './clock.js';

interface Flight<T> {
  promise: Promise<T>;
  waiters: number;
  controller: AbortController;
}

export class SingleFlight<T> {
  private inflight: Flight<T> | undefined;

  /** @param what names the fetch in the `aborted` error a leaving caller gets. */
  constructor(private readonly what: string) {}

  /** Joins the fetch in flight, or starts `fetch` when there is none. */
  join(fetch: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortedError(signal, this.what));
    if (!this.inflight) {
      const controller = new AbortController();
      const flight: Flight<T> = { promise: fetch(controller.signal), waiters: 0, controller };
      const clear = (): void => {
        if (this.inflight === flight) this.inflight = undefined;
      };
      flight.promise.then(clear, clear);
      this.inflight = flight;
    }
    const flight = this.inflight;
    flight.waiters++;
    return new Promise<T>((resolve, reject) => {
      const leave = (): void => {
        signal?.removeEventListener('abort', onAbort);
        flight.waiters--;
      };
      const onAbort = (): void => {
        leave();
        if (flight.waiters === 0) {
          // Nobody wants the result any more; a later caller starts afresh
          // instead of joining a fetch that is being cancelled.
          flight.controller.abort();
          if (this.inflight === flight) this.inflight = undefined;
        }
        reject(abortedError(signal as AbortSignal, this.what));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (value) => {
          leave();
          resolve(value);
        },
        (err: unknown) => {
          leave();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}
