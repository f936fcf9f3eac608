/**
 * The options both simulated tenants (the recording API and the platform
 * dialect) share, resolved the same way, and the checks both apply: each
 * fills in a default and throws a `RangeError` naming the option, so a
 * test that passes a bad value learns which one at start rather than from
 * odd behaviour later.
 */
import type { FaultsOption, TenantOptions } from './options.js';

/** A `[min, max]` in real milliseconds. */
export type RealRange = readonly [number, number];

function toMs(value: Date | string, name: string): number {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (!Number.isFinite(ms)) throw new RangeError(`simulator option ${name} is not a date`);
  return ms;
}

export function fraction(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(v >= 0 && v <= 1)) throw new RangeError(`simulator option ${name} must be within 0..1`);
  return v;
}

export function nonNegative(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`simulator option ${name} must be a number ≥ 0`);
  return v;
}

function recordingCount(options: TenantOptions): number {
  const recordings = options.recordings ?? 100;
  if (!(Number.isInteger(recordings) && recordings >= 0)) {
    throw new RangeError('simulator option recordings must be an integer ≥ 0');
  }
  return recordings;
}

/** The createdDate window generated recordings fall in: by default the 24 h before `startMs`. */
function createdWindow(
  options: TenantOptions,
  startMs: number,
): { createdFromMs: number; createdToMs: number } {
  const createdToMs = options.createdTo === undefined ? startMs : toMs(options.createdTo, 'createdTo');
  const createdFromMs =
    options.createdFrom === undefined ? createdToMs - 86_400_000 : toMs(options.createdFrom, 'createdFrom');
  if (createdFromMs >= createdToMs)
    throw new RangeError('simulator option createdFrom must be before createdTo');
  return { createdFromMs, createdToMs };
}

/** `[minBytes, maxBytes]` of generated media, each ≥ 0 and in order. */
export function byteBounds(
  media: { minBytes?: number | undefined; maxBytes?: number | undefined } | undefined,
  defaultMaxBytes: number,
): { minBytes: number; maxBytes: number } {
  const minBytes = nonNegative(media?.minBytes, 32 * 1024, 'media.minBytes');
  const maxBytes = nonNegative(media?.maxBytes, defaultMaxBytes, 'media.maxBytes');
  if (maxBytes < minBytes) throw new RangeError('simulator option media.maxBytes must be ≥ media.minBytes');
  return { minBytes, maxBytes };
}

/** Platform time divided by `timeScale`, for durations and for `[min, max]` ranges of them. */
export interface TimeScale {
  readonly timeScale: number;
  readonly real: (platformMs: number) => number;
  readonly range: (
    value: readonly [number, number] | undefined,
    fallback: readonly [number, number],
    name: string,
  ) => RealRange;
}

export function timeScaleOf(options: TenantOptions): TimeScale {
  const timeScale = options.timeScale ?? 1;
  if (!(Number.isFinite(timeScale) && timeScale > 0))
    throw new RangeError('simulator option timeScale must be > 0');
  const real = (platformMs: number): number => platformMs / timeScale;
  return {
    timeScale,
    real,
    range: (value, fallback, name) => {
      const [min, max] = value ?? fallback;
      if (!(min >= 0 && max >= min))
        throw new RangeError(`simulator option ${name} must be [min, max] with 0 ≤ min ≤ max`);
      return [real(min), real(max)] as const;
    },
  };
}

/** `TenantOptions` resolved: defaults filled in, durations in real milliseconds. */
export interface ResolvedTenantOptions {
  readonly host: string;
  readonly seed: number;
  readonly recordings: number;
  readonly createdFromMs: number;
  readonly createdToMs: number;
  readonly timeScale: number;
  readonly tokenTtlRealMs: number;
  readonly presignedUrlTtlRealMs: number;
  readonly retentionDays: number;
  readonly faults: FaultsOption;
  /** Wall clock when the tenant started. */
  readonly startMs: number;
}

export function resolveTenantOptions(
  options: TenantOptions,
  scale: TimeScale,
  startMs: number,
): ResolvedTenantOptions {
  const { real } = scale;
  return {
    host: options.host ?? '127.0.0.1',
    seed: options.seed ?? 1,
    recordings: recordingCount(options),
    ...createdWindow(options, startMs),
    timeScale: scale.timeScale,
    tokenTtlRealMs: real(nonNegative(options.tokenTtlMs, 3_600_000, 'tokenTtlMs')),
    presignedUrlTtlRealMs: real(nonNegative(options.presignedUrlTtlMs, 900_000, 'presignedUrlTtlMs')),
    retentionDays: nonNegative(options.retentionDays, 90, 'retentionDays'),
    faults: options.faults ?? 'none',
    startMs,
  };
}
