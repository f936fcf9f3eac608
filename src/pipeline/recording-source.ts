/**
 * The seam between the pipeline and a CXone dialect. Discovery, the worker
 * pool, the download (resume, verification, storage), leases and the
 * manifest are shared code; a dialect says only how a window is listed,
 * what each listed item is owed, and how a fresh media link is had.
 *
 * - `recording-api` (cxone-api.md): search pages, status-based waiting
 *   re-checked by listing, a download-URL call per channel that announces
 *   the size (`recording-api-source.ts`).
 * - `platform` (cxone-platform-api.md): completed contacts grouped per
 *   master contact, one media-playback call per recording when it is
 *   likely ready, links that announce nothing (`platform-source.ts`).
 *
 * Ledger rows stay dialect-neutral: the key is the recording id or the
 * `masterContactId`, the channel `combined` for the platform.
 */
import type { Dialect } from '../config.js';
import type { DiscoveredJob, JobRow } from '../state/ledger.js';
import type { JobOutcome } from './job-outcome.js';

/**
 * Where to GET one object, and what the API announced of it. The platform
 * announces neither size nor type: the download learns them from the media
 * host before the first byte is staged.
 */
export interface MediaLink {
  /** Presigned: a secret, never logged (use `safeUrl`). */
  url: string;
  contentType?: string | undefined;
  sizeBytes?: number | undefined;
}

/** A link to fetch, or what the row is owed instead (wait, settle). */
export type LinkAnswer = { link: MediaLink } | { outcome: JobOutcome };

/** What a re-check of the waiting rows did. */
export interface RecheckResult {
  due: number;
  becameAvailable: number;
  settled: number;
}

export interface ListWindow {
  /** ISO-8601, inclusive. */
  from: string;
  /** ISO-8601, exclusive. */
  to: string;
}

export interface ListedPage {
  /** The rows this page's items become, already classified (fetch, wait, settle). */
  jobs: DiscoveredJob[];
  /** Items the API listed on this page (recordings, or contact legs). */
  listed: number;
  /** Listed items by the API's status, for the export summary. */
  byStatus: Record<string, number>;
  /**
   * The index moved while this listing paged (its total changed, or a page
   * boundary repeated an item): an item indexed late may have slipped
   * behind the offset, so the listing does not count as complete.
   */
  shifted?: boolean;
}

export interface RecordingSource {
  readonly dialect: Dialect;
  /** Items per listing page: a listing of more may have shifted while paging. */
  readonly pageSize: number;
  /** Every item of the window, page by page (each once per listing). */
  listWindow(window: ListWindow, signal: AbortSignal): AsyncIterable<ListedPage>;
  /**
   * Items changed since an instant (`run`), when the dialect can list so;
   * yields the API's poll time to list from next time. Dialects without it
   * are listed by windows of their creation time.
   */
  listUpdatedSince?(since: string, signal: AbortSignal): AsyncIterable<ListedPage & { pollTime?: string }>;
  /**
   * How many items the window holds now, in one call, when the API says
   * (the platform's `totalRecords`). The index only grows, so a count equal
   * to what the last complete listing saw proves nothing was indexed since:
   * the final listing then costs one call instead of every page again.
   * `undefined`: the API gave no count; list the window instead.
   */
  countWindow?(window: ListWindow, signal: AbortSignal): Promise<number | undefined>;
  /** Due rows waiting on the platform, re-checked at the least cost the dialect allows. */
  recheckWaiting(signal: AbortSignal): Promise<RecheckResult>;
  /** What a claimed row is owed before any media link: e.g. a channel that was never captured. */
  preflight(job: JobRow, signal: AbortSignal): Promise<JobOutcome | undefined>;
  /** A fresh media link, asked for right before the transfer (and again when the media host refuses one). */
  mediaLink(job: JobRow, signal: AbortSignal): Promise<LinkAnswer>;
  /**
   * The media host answered 404, or served fewer bytes than the link
   * announced: what that means for the row (wait, purged, settled).
   * Undefined when the dialect cannot explain it (a fault to retry).
   */
  mediaMissing(
    job: JobRow,
    what: 'missing' | 'incomplete',
    signal: AbortSignal,
  ): Promise<JobOutcome | undefined>;
}
