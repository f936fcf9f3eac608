/**
 * One read shared by every caller, reused for `maxAgeMs` after it ended: a
 * scrape or a page view in a loop costs at most one ledger read per period,
 * however many clients ask (the reads of `/metrics` and the status page).
 * A failed read is not kept: the next caller tries again.
 */
export class CachedRead<T> {
  readonly #read: () => Promise<T>;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #value: { at: number; value: T } | undefined;
  #inflight: Promise<T> | undefined;

  constructor(read: () => Promise<T>, maxAgeMs: number, now: () => number = Date.now) {
    this.#read = read;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  get(): Promise<T> {
    const kept = this.#value;
    if (kept && this.#now() - kept.at < this.#maxAgeMs) return Promise.resolve(kept.value);
    if (!this.#inflight) {
      const flight = this.#read().then(
        (value) => {
          // Aged from when the read ended, so the ledger rests a whole period between two reads.
          this.#value = { at: this.#now(), value };
          this.#inflight = undefined;
          return value;
        },
        (err: unknown) => {
          this.#inflight = undefined;
          throw err;
        },
      );
      this.#inflight = flight;
    }
    return this.#inflight;
  }
}
