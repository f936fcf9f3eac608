/**
 * The platform dialect (cxone-platform-api.md) as a `RecordingSource`:
 * completed phone contacts become one row per master contact, and a row's
 * media link comes from one media-playback call when the call is likely
 * ready (the rules are in `platform-contacts.ts`).
 *
 * Every playback call spends one of a small budget (150 per 5 minutes by
 * default), so nothing here asks playback except `mediaLink`, which the
 * worker calls once per attempt of a due row, right before the transfer.
 * A call with several voice interactions is seen on its master row's first
 * successful ask: the others get rows of their own (`-2`, `-3`), each of
 * which asks playback once more for a fresh link when its turn comes.
 */
import type { CompletedContact } from '../cxone/platform/wire.js';
import {
  maxContactsPageSize,
  type CompletedContactsPage,
  type PlatformClient,
} from '../cxone/platform/client.js';
import type { Logger } from '../log.js';
import type { DiscoveredJob, JobRow, Ledger, RecordingMeta } from '../state/ledger.js';
import type { JobOutcome } from './job-outcome.js';
import {
  afterNotFound,
  groupByMaster,
  interactionIndex,
  interactionRowIds,
  masterJob,
  type PlatformPolicy,
} from './platform-contacts.js';
import type {
  LinkAnswer,
  ListedPage,
  ListWindow,
  RecordingSource,
  RecheckResult,
} from './recording-source.js';

/** The phone calls' media type: the only one with audio. */
const phoneMediaTypeId = 4;

export interface PlatformSourceOptions extends PlatformPolicy {
  client: Pick<PlatformClient, 'completedContacts' | 'playback'>;
  ledger: Ledger;
  log: Logger;
  now(): number;
  /** Which listed calls enter the ledger (`export --ids/--agent/…`, `selection.ts`); all when absent. */
  admit?: ((meta: RecordingMeta) => boolean) | undefined;
}

export function platformSource(options: PlatformSourceOptions): RecordingSource {
  const { client, ledger, log } = options;

  /**
   * One listing: legs of one master may come on different pages, so the
   * legs seen so far are kept for the listing, and each page records the
   * masters it touched with every leg seen of them.
   */
  async function* list(
    pages: AsyncIterable<
      Pick<CompletedContactsPage, 'contacts' | 'lastPollTime' | 'totalRecords' | 'duplicatesDropped'>
    >,
  ): AsyncIterable<ListedPage & { pollTime?: string }> {
    const legsByMaster = new Map<string, CompletedContact[]>();
    let firstTotal: number | undefined;
    for await (const page of pages) {
      // Offsets shifted under this listing (contract §3): a contact indexed meanwhile may sit behind the offset.
      firstTotal ??= page.totalRecords;
      const shifted =
        page.duplicatesDropped > 0 || (page.totalRecords !== undefined && page.totalRecords !== firstTotal);
      const touched = new Set<string>();
      const byStatus: Record<string, number> = {};
      for (const leg of page.contacts) {
        // The listing asks for phone calls only; a tenant that ignores the filter still gets none of the rest.
        if (leg.mediaTypeId !== undefined && leg.mediaTypeId !== phoneMediaTypeId) continue;
        const legs = legsByMaster.get(leg.masterContactId) ?? [];
        legs.push(leg);
        legsByMaster.set(leg.masterContactId, legs);
        touched.add(leg.masterContactId);
        const status = leg.abandoned === true ? 'Abandoned' : 'Completed';
        byStatus[status] = (byStatus[status] ?? 0) + 1;
      }
      const now = options.now();
      const jobs: DiscoveredJob[] = groupByMaster([...touched].flatMap((id) => legsByMaster.get(id) ?? []))
        .map((master) => masterJob(options, master, now))
        .filter((job) => options.admit?.(job.meta) ?? true);
      yield {
        jobs,
        listed: page.contacts.length,
        byStatus,
        ...(shifted ? { shifted } : {}),
        ...(page.lastPollTime === undefined ? {} : { pollTime: page.lastPollTime }),
      };
    }
  }

  return {
    dialect: 'platform',
    pageSize: maxContactsPageSize,

    listWindow(window: ListWindow, signal: AbortSignal): AsyncIterable<ListedPage> {
      return list(
        client.completedContacts(
          { startDate: window.from, endDate: window.to, mediaTypeId: phoneMediaTypeId },
          { signal },
        ),
      );
    },

    async countWindow(window: ListWindow, signal: AbortSignal): Promise<number | undefined> {
      const pages = client.completedContacts(
        { startDate: window.from, endDate: window.to, mediaTypeId: phoneMediaTypeId, top: 1 },
        { signal },
      );
      // The first page's total is the answer; leaving the loop asks for no second page.
      for await (const page of pages) return page.totalRecords;
      return 0; // 204: nothing matches
    },

    listUpdatedSince(since: string, signal: AbortSignal) {
      return list(
        client.completedContacts(
          { updatedSince: since, orderBy: 'lastUpdateTime', mediaTypeId: phoneMediaTypeId },
          { signal },
        ),
      );
    },

    // Rows wait as `pending` with a due time, asked by the workers: listings
    // cannot tell whether a call's media is ready, so nothing is re-listed.
    recheckWaiting: (): Promise<RecheckResult> => Promise.resolve({ due: 0, becameAvailable: 0, settled: 0 }),

    preflight: (): Promise<JobOutcome | undefined> => Promise.resolve(undefined),

    async mediaLink(job: JobRow, signal: AbortSignal): Promise<LinkAnswer> {
      const master = job.meta.contactId ?? job.recordingId;
      const answer = await client.playback(master, { signal });
      const now = options.now();
      if (answer.kind === 'not_found' || answer.interactions.length === 0) {
        return { outcome: notFound(options, job, now) };
      }
      const { interactions } = answer;
      const index = interactionIndex(job.recordingId, master);
      if (index === 0 && interactions.length > 1) {
        const extra = interactionRowIds(master, interactions.length).slice(1);
        const { inserted } = await ledger.upsertDiscovered(
          extra.map((recordingId) => ({
            recordingId,
            channel: 'combined' as const,
            meta: { ...job.meta, recordingId },
            state: 'pending' as const,
            nextRunAt: now,
          })),
        );
        if (inserted > 0)
          log.info(
            { masterContactId: master, interactions: interactions.length },
            'call has several recordings',
          );
      }
      const interaction = interactions[index];
      if (interaction === undefined) {
        return {
          outcome: {
            kind: 'final',
            state: 'media_unavailable',
            reason: 'playback lists fewer voice interactions than this row names',
            detail: `listed=${interactions.length} wanted=${index + 1}`,
          },
        };
      }
      return { link: { url: interaction.url, contentType: interaction.contentType } };
    },

    // A media host that answers 404 for a link playback just handed out, or
    // serves less than it announced, is judged like playback's own 404.
    mediaMissing: (job: JobRow, what: 'missing' | 'incomplete'): Promise<JobOutcome | undefined> =>
      Promise.resolve(what === 'missing' ? notFound(options, job, options.now()) : undefined),
  };
}

function notFound(policy: PlatformPolicy, job: JobRow, now: number): JobOutcome {
  const verdict = afterNotFound(policy, job.meta, now);
  if (verdict.kind === 'settle') return { kind: 'final', state: verdict.state, reason: verdict.reason };
  return {
    kind: 'later',
    at: verdict.at,
    status: 'Processing',
    reason: 'media playback: interaction not found yet (processing, never recorded, or purged)',
  };
}
