/**
 * `SimulatorOptions` with every default filled in, validated once, and
 * every platform duration converted to real milliseconds (divided by
 * `timeScale`), so the rest of the simulator never thinks about scaling.
 */
import type {
  ClientSpec,
  ListingInsertOptions,
  RateLimitOptions,
  RecordingSpec,
  SimulatorOptions,
} from './options.js';

type Required2<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

/** A `[min, max]` in real milliseconds. */
export type RealRange = readonly [number, number];

export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly seed: number;
  readonly recordings: number;
  readonly createdFromMs: number;
  readonly createdToMs: number;
  readonly extraRecordings: readonly RecordingSpec[];
  readonly clients: readonly ClientSpec[];
  readonly timeScale: number;
  readonly tokenTtlRealMs: number;
  readonly cursorIdleRealMs: number;
  readonly presignedUrlTtlRealMs: number;
  readonly rateLimit: RateLimitOptions | false;
  readonly mix: Required2<NonNullable<SimulatorOptions['mix']>>;
  readonly lifecycle: {
    readonly recordingRealMs: RealRange;
    readonly processingRealMs: RealRange;
    readonly longProcessingRealMs: RealRange;
    readonly longProcessingFraction: number;
    readonly lateIndexRealMs: RealRange;
  };
  readonly media: Required2<NonNullable<SimulatorOptions['media']>>;
  readonly retentionDays: number;
  readonly listingInserts: ListingInsertOptions | false;
  readonly faults: SimulatorOptions['faults'] & {};
  readonly startMs: number;
}

export const defaultClient: ClientSpec = {
  id: 'cxrec-demo',
  secret: 'demo-secret',
  scopes: ['recording:read', 'recording:download'],
};

function toMs(value: Date | string, name: string): number {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (!Number.isFinite(ms)) throw new RangeError(`simulator option ${name} is not a date`);
  return ms;
}

function fraction(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(v >= 0 && v <= 1)) throw new RangeError(`simulator option ${name} must be within 0..1`);
  return v;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`simulator option ${name} must be a number ≥ 0`);
  return v;
}

export function resolveOptions(options: SimulatorOptions, startMs = Date.now()): ResolvedOptions {
  const timeScale = options.timeScale ?? 1;
  if (!(Number.isFinite(timeScale) && timeScale > 0))
    throw new RangeError('simulator option timeScale must be > 0');
  const real = (platformMs: number): number => platformMs / timeScale;
  const range = (
    value: readonly [number, number] | undefined,
    fallback: readonly [number, number],
    name: string,
  ) => {
    const [min, max] = value ?? fallback;
    if (!(min >= 0 && max >= min))
      throw new RangeError(`simulator option ${name} must be [min, max] with 0 ≤ min ≤ max`);
    return [real(min), real(max)] as const;
  };
  const mix = options.mix ?? {};
  const lifecycle = options.lifecycle ?? {};
  const media = options.media ?? {};
  const minBytes = nonNegative(media.minBytes, 32 * 1024, 'media.minBytes');
  const maxBytes = nonNegative(media.maxBytes, 2 * 1024 * 1024, 'media.maxBytes');
  if (maxBytes < minBytes) throw new RangeError('simulator option media.maxBytes must be ≥ media.minBytes');
  const createdToMs = options.createdTo === undefined ? startMs : toMs(options.createdTo, 'createdTo');
  const createdFromMs =
    options.createdFrom === undefined
      ? createdToMs - 24 * 3600_000
      : toMs(options.createdFrom, 'createdFrom');
  if (createdFromMs >= createdToMs)
    throw new RangeError('simulator option createdFrom must be before createdTo');
  const rateLimit = options.rateLimit ?? { requests: 50, windowSeconds: 60 };
  if (rateLimit && !(rateLimit.requests >= 1 && rateLimit.windowSeconds > 0)) {
    throw new RangeError('simulator option rateLimit needs requests ≥ 1 and windowSeconds > 0');
  }
  const clients = options.clients ?? [defaultClient];
  if (clients.length === 0) throw new RangeError('simulator option clients must not be empty');
  const recordings = options.recordings ?? 100;
  if (!(Number.isInteger(recordings) && recordings >= 0)) {
    throw new RangeError('simulator option recordings must be an integer ≥ 0');
  }
  return {
    port: options.port ?? 0,
    host: options.host ?? '127.0.0.1',
    seed: options.seed ?? 1,
    recordings,
    createdFromMs,
    createdToMs,
    extraRecordings: options.extraRecordings ?? [],
    clients,
    timeScale,
    tokenTtlRealMs: real(nonNegative(options.tokenTtlMs, 3_600_000, 'tokenTtlMs')),
    cursorIdleRealMs: real(nonNegative(options.cursorIdleMs, 600_000, 'cursorIdleMs')),
    presignedUrlTtlRealMs: real(nonNegative(options.presignedUrlTtlMs, 900_000, 'presignedUrlTtlMs')),
    rateLimit,
    mix: {
      stillProcessing: fraction(mix.stillProcessing, 0.05, 'mix.stillProcessing'),
      failed: fraction(mix.failed, 0.03, 'mix.failed'),
      purged: fraction(mix.purged, 0.03, 'mix.purged'),
      neverCaptured: fraction(mix.neverCaptured, 0.05, 'mix.neverCaptured'),
      lateIndexed: fraction(mix.lateIndexed, 0.03, 'mix.lateIndexed'),
      hostileIds: fraction(mix.hostileIds, 0.05, 'mix.hostileIds'),
      noEtag: fraction(mix.noEtag, 0.05, 'mix.noEtag'),
      multipartEtag: fraction(mix.multipartEtag, 0.05, 'mix.multipartEtag'),
      noRetentionField: fraction(mix.noRetentionField, 0.1, 'mix.noRetentionField'),
    },
    lifecycle: {
      recordingRealMs: range(lifecycle.recordingMs, [0, 120_000], 'lifecycle.recordingMs'),
      processingRealMs: range(lifecycle.processingMs, [15_000, 45_000], 'lifecycle.processingMs'),
      longProcessingRealMs: range(
        lifecycle.longProcessingMs,
        [120_000, 300_000],
        'lifecycle.longProcessingMs',
      ),
      longProcessingFraction: fraction(
        lifecycle.longProcessingFraction,
        0.2,
        'lifecycle.longProcessingFraction',
      ),
      lateIndexRealMs: range(lifecycle.lateIndexMs, [60_000, 600_000], 'lifecycle.lateIndexMs'),
    },
    media: {
      minBytes,
      maxBytes,
      multipartThresholdBytes: nonNegative(
        media.multipartThresholdBytes,
        8 * 1024 * 1024,
        'media.multipartThresholdBytes',
      ),
      mpegFraction: fraction(media.mpegFraction, 0.2, 'media.mpegFraction'),
    },
    retentionDays: nonNegative(options.retentionDays, 90, 'retentionDays'),
    listingInserts: options.listingInserts ?? { probability: 0.05, count: 2, max: 10 },
    faults: options.faults ?? 'none',
    startMs,
  };
}
