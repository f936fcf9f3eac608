/**
 * `PlatformSimulatorOptions` with every default filled in, validated once,
 * and platform durations turned into real milliseconds.
 */
import { byteBounds, fraction, nonNegative, resolveTenantOptions, timeScaleOf } from '../tenant-options.js';
import type { RealRange, ResolvedTenantOptions } from '../tenant-options.js';
import type {
  AccessKeySpec,
  ApplicationSpec,
  BudgetOptions,
  CallSpec,
  PlatformListingInserts,
  PlatformMix,
  PlatformSimulatorOptions,
} from './options.js';

export const defaultApplication: ApplicationSpec = {
  id: 'cxrec-platform-app',
  secret: 'app-secret-0123456789',
};

/**
 * The default tenant's access keys. The first is the one to use; the
 * others reproduce the permission traps. Their secrets hold `+`, `/` and
 * `=` as real ones do, so a client that does not form-encode them fails.
 */
export const defaultAccessKeys: readonly AccessKeySpec[] = [
  { id: 'AKSIMULATOR0001', secret: 'q8+Zr/4kLm=Tx2Wv9/aB+cD3eF5gH7jK1mN0pQ+rS/tU8wX==' },
  { id: 'AKNOPLAYBACK0002', secret: 'nP/2+xy=Qw8ErT5yU7iO9pA1sD3fG6hJ/kL+zX4cV0bN=mM1', playback: false },
  { id: 'AKNOREPORTING0003', secret: 'rR+3/xz=Ab9CdE7fG5hI3jK1lM/nO+pQ6rS8tU0vW2xY4zA=', reporting: false },
  { id: 'AKDEACTIVATED0004', secret: 'dD+4/aa=Zz1Yy2Xx3Ww4Vv5Uu6Tt7Ss8Rr9Qq0Pp+Oo/Nn==', active: false },
];

type Filled<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

export interface PlatformResolvedOptions extends ResolvedTenantOptions {
  readonly port: number;
  readonly extraCalls: readonly CallSpec[];
  readonly maxLegs: number;
  readonly accessKeys: readonly AccessKeySpec[];
  readonly applications: readonly ApplicationSpec[];
  readonly refreshTokenTtlRealMs: number;
  readonly playbackLimit: BudgetOptions | false;
  readonly rateLimit: BudgetOptions | false;
  readonly stringValues: boolean;
  readonly globalDomain: boolean;
  readonly shortPages: number;
  readonly listingInserts: PlatformListingInserts | false;
  readonly stallRealMs: number;
  readonly mix: Filled<PlatformMix>;
  readonly processingRealMs: RealRange;
  readonly lateIndexRealMs: RealRange;
  readonly minBytes: number;
  readonly maxBytes: number;
}

function budget(value: BudgetOptions | false | undefined, fallback: BudgetOptions, name: string) {
  const b = value ?? fallback;
  if (b && !(Number.isInteger(b.requests) && b.requests >= 1 && b.windowSeconds > 0))
    throw new RangeError(`simulator option ${name} needs requests ≥ 1 and windowSeconds > 0`);
  return b;
}

export function resolvePlatformOptions(
  options: PlatformSimulatorOptions,
  startMs = Date.now(),
): PlatformResolvedOptions {
  const scale = timeScaleOf(options);
  const { real, range } = scale;
  const tenant = resolveTenantOptions(options, scale, startMs);
  const maxLegs = options.maxLegs ?? 4;
  if (!(Number.isInteger(maxLegs) && maxLegs >= 1))
    throw new RangeError('simulator option maxLegs must be ≥ 1');
  const { minBytes, maxBytes } = byteBounds(options.media, 512 * 1024);
  const accessKeys = options.accessKeys ?? defaultAccessKeys;
  const applications = options.applications ?? [defaultApplication];
  if (accessKeys.length === 0 || applications.length === 0)
    throw new RangeError('simulator options accessKeys and applications must not be empty');
  const mix = options.mix ?? {};
  const before2018Calls = options.mix?.before2018Calls ?? 1;
  if (!(Number.isInteger(before2018Calls) && before2018Calls >= 0))
    throw new RangeError('simulator option mix.before2018Calls must be an integer ≥ 0');
  return {
    ...tenant,
    port: options.port ?? 0,
    extraCalls: options.extraCalls ?? [],
    maxLegs,
    accessKeys,
    applications,
    refreshTokenTtlRealMs: real(nonNegative(options.refreshTokenTtlMs, 43_200_000, 'refreshTokenTtlMs')),
    playbackLimit: budget(options.playbackLimit, { requests: 150, windowSeconds: 300 }, 'playbackLimit'),
    rateLimit: budget(options.rateLimit, { requests: 50, windowSeconds: 60 }, 'rateLimit'),
    stringValues: options.stringValues ?? false,
    globalDomain: options.globalDomain ?? false,
    shortPages: fraction(options.shortPages, 0.1, 'shortPages'),
    listingInserts: options.listingInserts ?? { probability: 0.1, max: 10 },
    stallRealMs: nonNegative(options.stallMs, 45_000, 'stallMs'),
    mix: {
      stillProcessing: fraction(mix.stillProcessing, 0.1, 'mix.stillProcessing'),
      lateIndexed: fraction(mix.lateIndexed, 0.05, 'mix.lateIndexed'),
      abandoned: fraction(mix.abandoned, 0.03, 'mix.abandoned'),
      unrecorded: fraction(mix.unrecorded, 0.03, 'mix.unrecorded'),
      purged: fraction(mix.purged, 0.02, 'mix.purged'),
      twoInteractions: fraction(mix.twoInteractions, 0.03, 'mix.twoInteractions'),
      tinyMedia: fraction(mix.tinyMedia, 0.02, 'mix.tinyMedia'),
      transferred: fraction(mix.transferred, 0.15, 'mix.transferred'),
      wavMedia: fraction(mix.wavMedia, 0.1, 'mix.wavMedia'),
      multipartEtag: fraction(mix.multipartEtag, 0.05, 'mix.multipartEtag'),
      nonVoice: fraction(mix.nonVoice, 0.1, 'mix.nonVoice'),
      before2018Calls,
    },
    processingRealMs: range(options.lifecycle?.processingMs, [10_000, 180_000], 'lifecycle.processingMs'),
    lateIndexRealMs: range(options.lifecycle?.lateIndexMs, [60_000, 600_000], 'lifecycle.lateIndexMs'),
    minBytes,
    maxBytes,
  };
}
