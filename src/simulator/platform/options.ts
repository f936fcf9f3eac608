/**
 * Everything a test (or `cxrec simulate --dialect platform`) can set on the
 * platform-dialect tenant simulator (/work/shared/cxone-platform-api.md).
 * Defaults give the strict tenant the contract describes: budgets of 150
 * playback requests per 300 s and 50 other requests per minute, tokens of
 * an hour, URLs of 15 minutes, and every trap switched on at a small share.
 *
 * As in the recording-api simulator, durations are **platform
 * milliseconds** divided by `timeScale` to get real time; dates handed out
 * (`contactStartDate`, `lastUpdateTime`, a token's `exp`, a URL's
 * `Expires`) are wall-clock, and budget windows are real seconds.
 */
import type { Range, TenantOptions } from '../options.js';

/** An access key of an API user: what `CXONE_ACCESS_KEY_ID`/`SECRET` hold. */
export interface AccessKeySpec {
  id: string;
  /** About 50 characters holding `+`, `/` and `=` in the default keys, so form-encoding is exercised. */
  secret: string;
  /** The user's role has the Reporting permission (contacts/completed, hierarchy). @default true */
  reporting?: boolean;
  /** The user's role has "Play/download recordings: Play Any" (media playback). @default true */
  playback?: boolean;
  /** A deactivated key gets 400 invalid_grant, like a wrong one. @default true */
  active?: boolean;
}

/** A registered application: `CXONE_CLIENT_ID`/`SECRET`. */
export interface ApplicationSpec {
  id: string;
  secret: string;
}

export type PlatformContentType = 'audio/mp4' | 'audio/wav';

/** Non-voice media types a tenant lists besides phone calls (`mediaTypeId` 4). */
export const nonVoiceMediaTypes: Readonly<Record<number, string>> = {
  1: 'EMail',
  3: 'Chat',
  6: 'Work Item',
  8: 'SMS',
};

/**
 * One call a test asks for exactly. What is left out is drawn from the
 * seeded generator. A call of `legs` legs lists one contact per leg; legs 1
 * and 2 share leg 1's `contactId` as `masterContactId`, legs 3 and on share
 * leg 3's (contract §3, *defined here*), and each master contact has its
 * own recording.
 */
export interface CallSpec {
  /** Start of the first leg (whole seconds). @default a random instant that lets the call end before now */
  startDate?: Date | string;
  /** @default 1 (a phone call), or random 1..`maxLegs` for generated calls */
  legs?: number;
  /** Seconds each leg lasts. @default random 20..900 */
  legDurationSeconds?: number;
  /** `4` is a phone call; any other id is a non-voice contact: one leg, never any audio. @default 4 */
  mediaTypeId?: number;
  /** Calls on an unrecorded skill never get a recording. @default true */
  recorded?: boolean;
  /** An abandoned call: one short leg, `abandoned: true`, no recording. @default false */
  abandoned?: boolean;
  /** Voice interactions per master contact (one object each). @default 1 */
  interactions?: number;
  /** Bytes of each interaction's media (≤ 1024 is "no audio"). @default random in `media.minBytes..maxBytes` */
  sizeBytes?: number;
  /** @default 'audio/mp4' (`audio/wav` on older calls, see `mix.wavMedia`) */
  contentType?: PlatformContentType;
  /** @default 'md5' (`multipart` on `mix.multipartEtag` of the objects) */
  etag?: 'md5' | 'multipart';
  /**
   * Platform ms after the call ended (or after it was added, whichever is
   * later) before media playback finds it.
   * @default random in `lifecycle.processingMs`
   */
  processingMs?: number;
  /** Platform ms after the add before listings show its legs. @default 0 (at once) */
  lateIndexMs?: number;
  /** Media already purged by retention (playback 404 forever). @default false */
  purged?: boolean;
}

/** Shares (0..1) of the generated phone calls that carry one trap. A call carries at most one. */
export interface PlatformMix {
  /** Ended in the last minutes before the start; playback answers 404 until processing ends. @default 0.1 */
  stillProcessing?: number;
  /** Listed only `lifecycle.lateIndexMs` after the start, in any order. @default 0.05 */
  lateIndexed?: number;
  /** Abandoned calls: no recording, ever. @default 0.03 */
  abandoned?: number;
  /** On an unrecorded skill: no recording, ever. @default 0.03 */
  unrecorded?: number;
  /** Started before the retention (`retentionDays`) and purged: outside the default time range. @default 0.02 */
  purged?: number;
  /** Two voice interactions: objects at the usual key and at `-2`. @default 0.03 */
  twoInteractions?: number;
  /** Media of at most 1024 bytes: no audio. @default 0.02 */
  tinyMedia?: number;
  /** Transferred calls (2..`maxLegs` legs); those of 3+ legs have two master contacts. @default 0.15 */
  transferred?: number;
  /** Objects served as `audio/wav` instead of `audio/mp4` (older calls). @default 0.1 */
  wavMedia?: number;
  /** Objects whose ETag is `"…-N"` (no md5). @default 0.05 */
  multipartEtag?: number;
  /** Non-voice contacts added besides the `recordings` phone calls, as a share of them. @default 0.1 */
  nonVoice?: number;
  /** Phone calls recorded before 13 Dec 2018 (playback 404) added besides the others. @default 1 */
  before2018Calls?: number;
}

export interface PlatformLifecycleOptions {
  /** Processing after a call ends before playback finds it (NICE: seconds to minutes). @default [10_000, 180_000] */
  processingMs?: Range;
  /** How long after the start a late-indexed contact shows up in listings. @default [60_000, 600_000] */
  lateIndexMs?: Range;
}

export interface PlatformMediaOptions {
  /** @default 32 * 1024 */
  minBytes?: number;
  /** @default 512 * 1024 */
  maxBytes?: number;
}

/** Budget of the tenant: `requests` accepted per sliding window of `windowSeconds` real seconds. */
export interface BudgetOptions {
  requests: number;
  windowSeconds: number;
}

/**
 * Late indexing triggered by listing: on a request with `skip > 0`, with
 * `probability`, one not-yet-indexed contact whose start is in the listed
 * window is indexed now, shifting every later offset by one. `max` caps
 * the total so a one-shot export ends.
 */
export interface PlatformListingInserts {
  probability: number;
  max: number;
}

export interface PlatformSimulatorOptions extends TenantOptions {
  /** Issuer port; the API host listens on `port + 1` and the media host on `port + 2`. 0: three free ports. @default 0 */
  port?: number;
  /** Exact calls to hold as well. @default [] */
  extraCalls?: readonly CallSpec[];
  /** Most legs a generated transferred call has. @default 4 */
  maxLegs?: number;
  /** @default see `defaultAccessKeys` */
  accessKeys?: readonly AccessKeySpec[];
  /** @default [{ id: 'cxrec-platform-app', secret: 'app-secret-0123456789' }] */
  applications?: readonly ApplicationSpec[];
  /** Refresh token lifetime (platform ms). @default 43_200_000 */
  refreshTokenTtlMs?: number;
  /** Media playback budget; `false` disables it. @default { requests: 150, windowSeconds: 300 } */
  playbackLimit?: BudgetOptions | false;
  /** Budget of every other API-host request; `false` disables it. @default { requests: 50, windowSeconds: 60 } */
  rateLimit?: BudgetOptions | false;
  /** Field values all strings (`"contactId": "2789879875"`, `"isLogged": "True"`), as some tenants get. @default false */
  stringValues?: boolean;
  /** `/.well-known/cxone-configuration` also carries `globaldomain`. @default false */
  globalDomain?: boolean;
  /** Share of non-final listing pages that hold fewer rows than `top`. @default 0.1 */
  shortPages?: number;
  /** @default { probability: 0.1, max: 10 } */
  listingInserts?: PlatformListingInserts | false;
  /** Real ms a stalled media transfer holds the connection before dropping it. @default 45_000 */
  stallMs?: number;
  /** @default {} */
  mix?: PlatformMix;
  /** @default {} */
  lifecycle?: PlatformLifecycleOptions;
  /** @default {} */
  media?: PlatformMediaOptions;
}
