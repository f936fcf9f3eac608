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
import { byteBounds, fraction, nonNegative, resolveTenantOptions, timeScaleOf } from './tenant-options.js';
import type { RealRange, ResolvedTenantOptions } from './tenant-options.js';

type Required2<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

export interface ResolvedOptions extends ResolvedTenantOptions {
  readonly port: number;
  readonly extraRecordings: readonly RecordingSpec[];
  readonly clients: readonly ClientSpec[];
  readonly cursorIdleRealMs: number;
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
  readonly listingInserts: ListingInsertOptions | false;
}

export const defaultClient: ClientSpec = {
  id: 'cxrec-demo',
  secret: 'demo-secret',
  scopes: ['recording:read', 'recording:download'],
};

export function resolveOptions(options: SimulatorOptions, startMs = Date.now()): ResolvedOptions {
  const scale = timeScaleOf(options);
  const { real, range } = scale;
  const mix = options.mix ?? {};
  const lifecycle = options.lifecycle ?? {};
  const media = options.media ?? {};
  const { minBytes, maxBytes } = byteBounds(media, 2 * 1024 * 1024);
  const rateLimit = options.rateLimit ?? { requests: 50, windowSeconds: 60 };
  if (rateLimit && !(rateLimit.requests >= 1 && rateLimit.windowSeconds > 0)) {
    throw new RangeError('simulator option rateLimit needs requests ≥ 1 and windowSeconds > 0');
  }
  const clients = options.clients ?? [defaultClient];
  if (clients.length === 0) throw new RangeError('simulator option clients must not be empty');
  const tenant = resolveTenantOptions(options, scale, startMs);
  return {
    ...tenant,
    port: options.port ?? 0,
    extraRecordings: options.extraRecordings ?? [],
    clients,
    cursorIdleRealMs: real(nonNegative(options.cursorIdleMs, 600_000, 'cursorIdleMs')),
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
    listingInserts: options.listingInserts ?? { probability: 0.05, count: 2, max: 10 },
  };
}
