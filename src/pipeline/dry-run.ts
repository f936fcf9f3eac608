/**
 * `cxrec export --dry-run`: one listing of the window through the dialect's
 * `RecordingSource`, classified exactly as an export would classify it, and
 * nothing else — no detail, download-URL or playback call, no media, no
 * ledger (the source gets a ledger that refuses every use). From what was
 * listed: what an export would fetch, a size estimate, and how long the
 * tenant's budgets need for it.
 */
import type { Dialect } from '../config.js';
import type { DiscoveredJob, Ledger, RecordingMeta } from '../state/ledger.js';
import type { ListWindow, RecordingSource } from './recording-source.js';

/**
 * A ledger for the source that refuses every use: listing a window needs
 * none, and a dry run must not create, read or write one.
 */
export const noLedger: Ledger = new Proxy({} as Ledger, {
  get(_target, prop) {
    // Not a thenable: `await` on it must not look like a ledger call.
    if (prop === 'then') return undefined;
    throw new Error(`a dry run touches no ledger (Ledger.${String(prop)} was asked for)`);
  },
});

export interface DryRunListing {
  /** Items the API listed (recordings; for the platform, contact legs). */
  listed: number;
  /** Listed items by the API's status. */
  byStatus: Record<string, number>;
  /** Listing pages fetched: one API call each. */
  listingCalls: number;
  /** Distinct recordings (ledger row keys' recording ids) the listing makes, before any selection. */
  recordings: number;
  /** The rows an export would write (one per recording and wanted channel), selected only. */
  rows: DiscoveredJob[];
}

/** Lists `window` once and keeps the selected rows as an export would first record them. */
export async function listForDryRun(
  source: RecordingSource,
  window: ListWindow,
  options: { select?: (meta: RecordingMeta) => boolean; signal: AbortSignal },
): Promise<DryRunListing> {
  const byKey = new Map<string, DiscoveredJob>();
  const byStatus: Record<string, number> = {};
  let listed = 0;
  let listingCalls = 0;
  for await (const page of source.listWindow(window, options.signal)) {
    listingCalls++;
    listed += page.listed;
    for (const [status, n] of Object.entries(page.byStatus)) byStatus[status] = (byStatus[status] ?? 0) + n;
    // A later page's verdict on the same row wins, as in the ledger (the platform re-yields a master per leg page).
    for (const job of page.jobs) byKey.set(`${job.channel}\u0000${job.recordingId}`, job);
  }
  const all = [...byKey.values()];
  const recordings = new Set(all.map((j) => j.recordingId)).size;
  const rows = options.select ? all.filter((j) => options.select?.(j.meta)) : all;
  return { listed, byStatus, listingCalls: Math.max(1, listingCalls), recordings, rows };
}

/**
 * Bytes per second of call time per object, for the size estimate: the
 * recording API's WAV as 8 kHz 16-bit mono PCM; the platform's MP4 audio
 * as 32 kbit/s. Neither API announces a size before the media link.
 */
export const estimateBytesPerSecond: Record<Dialect, number> = {
  'recording-api': 16_000,
  platform: 4_000,
};

export interface DryRunBudget {
  /** Calls against CXREC_RATE_LIMIT: both listings, the token, and the per-object calls. */
  apiCalls: number;
  apiParts: Record<string, number>;
  apiMinutes: number;
  /** Platform: media-playback calls (one per recorded call at least). */
  playbackCalls: number;
  playbackMinutes: number;
  /** The longer of the two: what the budgets need at their steady pace. */
  minutes: number;
}

export interface DryRunPlan {
  /** Rows ready to fetch now (`pending`). */
  fetchNow: number;
  /** Rows waiting for processing, fetched once Available (`waiting`). */
  fetchLater: number;
  /** Rows settled without any fetch, by state and reason. */
  settled: Record<string, Record<string, number>>;
  selectedRecordings: number;
  /** Sum of the durations of the rows to fetch, and how many of them had one. */
  durationSeconds: number;
  withDuration: number;
  estimatedBytes: number;
  budget: DryRunBudget;
}

export interface BudgetSettings {
  dialect: Dialect;
  rateLimitPerMinute: number;
  playbackLimit: number;
  playbackWindowSeconds: number;
}

/** What an export of the listed rows would do and cost. */
export function planDryRun(listing: DryRunListing, settings: BudgetSettings): DryRunPlan {
  const settled: DryRunPlan['settled'] = {};
  let fetchNow = 0;
  let fetchLater = 0;
  let durationSeconds = 0;
  let withDuration = 0;
  const detailRecordings = new Set<string>();
  for (const row of listing.rows) {
    if (row.state === 'pending' || row.state === 'waiting') {
      if (row.state === 'pending') fetchNow++;
      else fetchLater++;
      if (row.meta.durationSeconds !== undefined) {
        durationSeconds += row.meta.durationSeconds;
        withDuration++;
      }
      // A channel other than combined is first checked against the recording's detail (one call per recording).
      if (row.channel !== 'combined') detailRecordings.add(row.recordingId);
      continue;
    }
    const reasons = (settled[row.state] ??= {});
    const reason = row.reason ?? '';
    reasons[reason] = (reasons[reason] ?? 0) + 1;
  }
  const toFetch = fetchNow + fetchLater;
  const listings = 2 * listing.listingCalls;
  const apiParts: Record<string, number> =
    settings.dialect === 'platform'
      ? { listing: listings }
      : { listing: listings, token: 1, 'download-URL': toFetch, detail: detailRecordings.size };
  const apiCalls = Object.values(apiParts).reduce((a, b) => a + b, 0);
  const apiMinutes = apiCalls / settings.rateLimitPerMinute;
  const playbackCalls = settings.dialect === 'platform' ? toFetch : 0;
  const playbackMinutes = (playbackCalls / settings.playbackLimit) * (settings.playbackWindowSeconds / 60);
  return {
    fetchNow,
    fetchLater,
    settled,
    selectedRecordings: new Set(listing.rows.map((r) => r.recordingId)).size,
    durationSeconds,
    withDuration,
    estimatedBytes: Math.round(durationSeconds * estimateBytesPerSecond[settings.dialect]),
    budget: {
      apiCalls,
      apiParts,
      apiMinutes,
      playbackCalls,
      playbackMinutes,
      minutes: Math.max(apiMinutes, playbackMinutes),
    },
  };
}
