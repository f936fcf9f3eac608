/**
 * Everything a test (or `cxrec simulate`) can set on the CXone tenant
 * simulator. Defaults follow the production behaviour written down in
 * /work/shared/cxone-api.md, so a simulator started with no options is the
 * strict tenant the exporter must survive; tests shrink the timings with
 * `timeScale` or by setting the durations directly.
 *
 * Durations are in **platform milliseconds**: the simulator divides each of
 * them by `timeScale` to get the real time it waits. Timestamps it hands out
 * (`createdDate`, `retentionExpiresAt`, a URL's `Expires`) are always
 * wall-clock, so an exporter's own clock and the simulator's agree.
 */

export type RecordingStatus = 'Recording' | 'Processing' | 'Available' | 'Failed';
export const recordingStatuses: readonly RecordingStatus[] = [
  'Recording',
  'Processing',
  'Available',
  'Failed',
];

export type Channel = 'combined' | 'caller' | 'agent';
export const channels: readonly Channel[] = ['combined', 'caller', 'agent'];

export type MediaContentType = 'audio/wav' | 'audio/mpeg';

/**
 * How the media host labels an object. `md5`: the quoted md5 hex of the
 * object (stored in one part). `multipart`: `"<hex>-N"`, which carries no
 * md5. `none`: no ETag header at all.
 */
export type EtagKind = 'md5' | 'multipart' | 'none';

/** One OAuth API client known to the tenant. */
export interface ClientSpec {
  id: string;
  secret: string;
  /** Scopes bound to the API client itself: what the token endpoint can grant. */
  scopes: readonly string[];
  /**
   * Scopes bound to the client's *user*. The client-credentials grant ignores
   * them (contract §1); they exist to reproduce the tenant where an admin
   * gave `recording:download` to the user instead of the API client.
   * @default []
   */
  userScopes?: readonly string[];
}

/** One channel's media object, for `RecordingSpec.channels`. */
export interface ChannelSpec {
  /** Exact object size. 2 GiB and more is fine: media is generated while streaming. @default random in `media.minBytes..media.maxBytes` */
  sizeBytes?: number;
  /** @default the recording's content type (random per recording, mostly audio/wav) */
  contentType?: MediaContentType;
  /** @default 'md5' below `media.multipartThresholdBytes`, else 'multipart' (some 'none', see `mix.noEtag`) */
  etag?: EtagKind;
}

/**
 * An exact recording a test asks for. Every field is optional; what is left
 * out is drawn from the seeded generator like any other recording.
 */
export interface RecordingSpec {
  /** Any string but `.`, `..` and `search` (the platform never issues those). @default a seeded UUID */
  id?: string;
  /** Whole seconds are kept (the platform has one-second resolution). @default random in the createdDate window */
  createdDate?: Date | string;
  /**
   * Status when the simulator starts (or when the recording is added).
   * `Recording` moves to `Processing` after `recordingMs`, `Processing` to
   * `finalStatus` after `processingMs`.
   * @default 'Available'
   */
  status?: RecordingStatus;
  /** Where a `Recording`/`Processing` recording ends. @default 'Available' */
  finalStatus?: 'Available' | 'Failed';
  /** Platform ms spent in `Recording` (scaled by `timeScale`). @default random in `lifecycle.recordingMs` */
  recordingMs?: number;
  /** Platform ms spent in `Processing` (scaled by `timeScale`). @default random in `lifecycle.processingMs` */
  processingMs?: number;
  /**
   * Channels and their media. `false` (or a channel left out when the object
   * is given) means never captured: missing from `availableChannels`, and
   * its download URL leads to a bare header.
   * @default combined always; caller and agent on about half the calls
   */
  channels?: Partial<Record<Channel, ChannelSpec | false>>;
  /**
   * When the media may be purged; purging happens as soon as it has passed
   * (wall clock, not scaled). `null`: the field is absent from the detail and
   * the tenant's `retentionDays` applies.
   * @default createdDate + `retentionDays`
   */
  retentionExpiresAt?: Date | string | null;
  /** Shorthand for a `retentionExpiresAt` already in the past. @default false */
  purged?: boolean;
  /** Platform ms after the simulator start (or the add) before search lists it (scaled). @default 0 */
  lateIndexMs?: number;
  contactId?: string;
  durationSeconds?: number;
  direction?: 'inbound' | 'outbound';
  agentId?: string;
  skillName?: string;
}

/** A `[min, max]` range, inclusive, drawn uniformly from the seeded generator. */
export type Range = readonly [min: number, max: number];

/** Fractions (0..1) of the generated `recordings` that are special. Each recording gets at most one. */
export interface RecordingMix {
  /** Still `Recording` or `Processing` at start; they become `Available` after the lifecycle delays. @default 0.05 */
  stillProcessing?: number;
  /** `Failed` for good (half already failed at start, half fail after processing). @default 0.03 */
  failed?: number;
  /** Past `retentionExpiresAt`: still listed, URL still issued, media answers 404 NoSuchKey. @default 0.03 */
  purged?: number;
  /** At least one channel never captured (sometimes `combined` itself). @default 0.05 */
  neverCaptured?: number;
  /** Appear in search only `lifecycle.lateIndexMs` after the start. @default 0.03 */
  lateIndexed?: number;
  /** Ids like `../x`, `a/b`, spaces, unicode, `CON`, `.hidden`, 300 characters. @default 0.05 */
  hostileIds?: number;
  /** Captured channels whose ETag is absent. @default 0.05 */
  noEtag?: number;
  /** Captured channels with a multipart `"…-N"` ETag even when small. @default 0.05 */
  multipartEtag?: number;
  /** Recordings with no `retentionExpiresAt` field (tenant retention applies). @default 0.1 */
  noRetentionField?: number;
}

/** Platform-time delays of the recording lifecycle, all scaled by `timeScale`. */
export interface LifecycleOptions {
  /** Time a still-processing call stays `Recording` (call in progress). @default [0, 120_000] */
  recordingMs?: Range;
  /** Transcoding time of a normal call (contract: 15–45 s). @default [15_000, 45_000] */
  processingMs?: Range;
  /** Transcoding time of conferences and tagged calls (contract: 2+ min). @default [120_000, 300_000] */
  longProcessingMs?: Range;
  /** Fraction of processing recordings that take `longProcessingMs`. @default 0.2 */
  longProcessingFraction?: number;
  /** Delay before a late-indexed recording shows up in search. @default [60_000, 600_000] */
  lateIndexMs?: Range;
}

/** Media object sizes and labels. */
export interface MediaOptions {
  /** @default 32 * 1024 */
  minBytes?: number;
  /** @default 2 * 1024 * 1024 */
  maxBytes?: number;
  /** Objects at least this big get a multipart ETag, as an S3 multipart upload would. @default 8 * 1024 * 1024 */
  multipartThresholdBytes?: number;
  /** Fraction of recordings stored as audio/mpeg instead of audio/wav. @default 0.2 */
  mpegFraction?: number;
}

/**
 * Recordings inserted into the index while a client pages through a
 * listing: on each follow-up page request (one with a `pageToken`), with
 * `probability`, `count` recordings are inserted with a `createdDate` inside
 * the listed window. Offset cursors then shift items across page boundaries
 * (duplicates with `desc`), exactly what the contract tells clients to
 * tolerate. `max` caps the total so a one-shot export terminates.
 */
export interface ListingInsertOptions {
  probability: number;
  count: number;
  max: number;
}

/** Probability (0..1) per eligible request of each injected fault. */
export interface FaultProbabilities {
  /** An `/api/v2` request starts a 429 burst: everything is refused for 1–3 real seconds. */
  rateLimitBurst?: number;
  /** An `/api/v2` or media request answers 500 or 503. */
  serverError?: number;
  /** A response is cut by a TCP reset part-way through its body. */
  connectionReset?: number;
  /** A media response ends cleanly before `Content-Length` bytes. */
  shortBody?: number;
  /** An authenticated API call finds its (otherwise valid) token revoked: 401 invalid_token. */
  tokenRevocation?: number;
  /** A search with a `pageToken` finds its cursor dropped: 400 invalid_page_token. */
  cursorInvalidation?: number;
  /**
   * A media transfer stops sending part-way and keeps the connection open
   * until the host's stall time is up, then drops it. Only media hosts
   * that have a stall time roll it (the platform dialect's).
   */
  stall?: number;
}

/** `none`: no faults. `light`: about 1–2 % per kind. `chaos`: 5–10 % per kind. */
export type FaultProfile = 'none' | 'light' | 'chaos';

export type FaultsOption = FaultProfile | FaultProbabilities;

export interface RateLimitOptions {
  /** Requests accepted per sliding window. */
  requests: number;
  /** Window length in **real** seconds (never scaled: exporters configure their limiter in real requests/minute). */
  windowSeconds: number;
}

/** What every simulated tenant (this one and the platform dialect's) is configured with. */
export interface TenantOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** Seeds every generated id, date, size, byte of media and (where the request order allows) fault. @default 1 */
  seed?: number;
  /**
   * How many recordings the tenant generates at start, besides the exact ones
   * given (on the platform: phone calls, besides its non-voice contacts, the
   * pre-2018 call and purged calls). @default 100
   */
  recordings?: number;
  /** Start of the createdDate window the generated recordings are spread over. @default 24 h before start */
  createdFrom?: Date | string;
  /** End (exclusive) of that window. @default the start time */
  createdTo?: Date | string;
  /**
   * Divides every platform duration (token and URL lifetimes, cursor idle
   * expiry, processing and indexing delays) to get real time: with 600, a
   * 15-minute URL lives 1.5 s. It does not scale rate-limit windows,
   * retention (a wall-clock date), stalls or fault bursts (real time).
   * @default 1
   */
  timeScale?: number;
  /** Access token lifetime, `expires_in` (platform ms; `expires_in` reports the real seconds, rounded up). @default 3_600_000 */
  tokenTtlMs?: number;
  /** Presigned URL lifetime (platform ms; `Expires` has one-second resolution, so a URL may live up to 1 s longer). @default 900_000 */
  presignedUrlTtlMs?: number;
  /** Media older than this many days is purged (when a recording names no retention of its own). @default 90 */
  retentionDays?: number;
  /** @default 'none' */
  faults?: FaultsOption;
}

export interface SimulatorOptions extends TenantOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  port?: number;
  /** Exact recordings to hold as well (ids, sizes, statuses, channels). @default [] */
  extraRecordings?: readonly RecordingSpec[];
  /** The tenant's API clients. @default [{ id: 'cxrec-demo', secret: 'demo-secret', scopes: ['recording:read', 'recording:download'] }] */
  clients?: readonly ClientSpec[];
  /** A cursor unused this long answers 400 invalid_page_token (platform ms). @default 600_000 */
  cursorIdleMs?: number;
  /** Sliding-window limit on `/api/v2/*`, token endpoint included; `false` disables it. @default { requests: 50, windowSeconds: 60 } */
  rateLimit?: RateLimitOptions | false;
  /** @default {} (the defaults listed on `RecordingMix`) */
  mix?: RecordingMix;
  /** @default {} (the defaults listed on `LifecycleOptions`) */
  lifecycle?: LifecycleOptions;
  /** @default {} (the defaults listed on `MediaOptions`) */
  media?: MediaOptions;
  /** Inserts while a client pages; `false` disables them. @default { probability: 0.05, count: 2, max: 10 } */
  listingInserts?: ListingInsertOptions | false;
}
