/**
 * Calls per endpoint (or route) and outcome since the last reset, as both
 * simulated tenants report them in `/__stats`.
 */

/**
 * Besides HTTP status codes: `reset` (TCP reset mid-body), `short` (body
 * cut before Content-Length), `stall` (body stopped, connection held, then
 * dropped), `expired-mid-transfer`.
 */
export type CallOutcome = `${number}` | 'reset' | 'short' | 'stall' | 'expired-mid-transfer';

export type CallCounts<Key extends string> = Record<
  Key,
  { total: number; byStatus: Partial<Record<CallOutcome, number>> }
>;

function emptyCallCounts<Key extends string>(keys: readonly Key[]): CallCounts<Key> {
  return Object.fromEntries(keys.map((k) => [k, { total: 0, byStatus: {} }])) as CallCounts<Key>;
}

export class CallLog<Key extends string> {
  readonly #startedMs = Date.now();
  #sinceMs = this.#startedMs;
  #calls: CallCounts<Key>;

  constructor(private readonly keys: readonly Key[]) {
    this.#calls = emptyCallCounts(keys);
  }

  count(key: Key, outcome: CallOutcome): void {
    const entry = this.#calls[key];
    entry.total++;
    entry.byStatus[outcome] = (entry.byStatus[outcome] ?? 0) + 1;
  }

  reset(): void {
    this.#sinceMs = Date.now();
    this.#calls = emptyCallCounts(this.keys);
  }

  /** The head of a `/__stats` snapshot: since when, and the counts (a copy). */
  snapshot(): { startedAt: string; since: string; calls: CallCounts<Key> } {
    return {
      startedAt: new Date(this.#startedMs).toISOString(),
      since: new Date(this.#sinceMs).toISOString(),
      calls: structuredClone(this.#calls),
    };
  }
}
