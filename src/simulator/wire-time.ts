/**
 * Times as the simulated tenants write and read them: ISO 8601 UTC to the
 * whole second (`2026-01-02T03:04:05Z`), as both CXone APIs do, and the
 * dates a test gives for an exact recording or call.
 */

/** `2026-01-02T03:04:05Z`: the milliseconds dropped, as CXone writes its dates. */
export function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function wholeSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** A date given in a spec (a `Date` or an ISO string) in ms; a RangeError when it is none. */
export function specDateMs(value: Date | string): number {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (!Number.isFinite(ms)) throw new RangeError(`not a date: ${String(value)}`);
  return ms;
}
