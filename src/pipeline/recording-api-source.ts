/**
 * The recording-api dialect (cxone-api.md) as a `RecordingSource`.
 *
 * A window is listed whatever the status (one call per 100 recordings):
 * `Available` ones are ready, `Recording`/`Processing` ones wait and are
 * re-checked with backoff, `Failed` ones are settled, and recordings older
 * than 70 % of the tenant's retention are left out and reported.
 *
 * Re-checks are where calls get wasted, so they never cost a call per
 * recording: the window of the recordings that are due is listed with the
 * filter `status in [Recording, Processing]`, which returns only those
 * still not ready — usually a single page however many recordings became
 * Available meanwhile — and once more with `status eq Failed`. A due
 * recording in neither list is ready. If the index lags and one is not
 * ready after all, the download meets the Processing trap (a 404 or a
 * short object) and a fresh detail sends it back to waiting.
 */
import { CxrecError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Channel, DiscoveredJob, JobRow, Ledger, RecordingMeta } from '../state/ledger.js';
import type { JobOutcome } from './job-outcome.js';
import type {
  ListWindow as ApiListWindow,
  Recording,
  RecordingApi,
  RecordingDetail,
} from './recording-api.js';
import { nextRecheckAt, outOfRetention, processingGivenUp, retentionEnd } from './recording-policy.js';
import type {
  LinkAnswer,
  ListedPage,
  ListWindow,
  RecordingSource,
  RecheckResult,
} from './recording-source.js';

export interface RecordingApiSourceOptions {
  api: RecordingApi;
  ledger: Ledger;
  channels: readonly Channel[];
  channelFallback: 'combined' | 'none';
  retentionDays: number;
  pollSeconds: number;
  maxProcessingMinutes: number;
  log: Logger;
  now(): number;
  /**
   * Which listed recordings enter the ledger (`export --ids/--agent/…`,
   * `selection.ts`); all when absent. Rows already in the ledger are
   * re-checked whatever it says.
   */
  admit?: ((meta: RecordingMeta) => boolean) | undefined;
}

/** Detail answers kept for the channels of one recording; old ones are dropped past this many. */
const detailCacheSize = 1000;

export function recordingApiSource(options: RecordingApiSourceOptions): RecordingSource {
  // Detail calls are shared by the channels of one recording.
  const detailCache = new Map<string, Promise<RecordingDetail>>();
  const getDetail = (recordingId: string, signal: AbortSignal): Promise<RecordingDetail> => {
    let pending = detailCache.get(recordingId);
    if (!pending) {
      while (detailCache.size >= detailCacheSize) {
        const oldest = detailCache.keys().next().value;
        if (oldest === undefined) break;
        detailCache.delete(oldest);
      }
      pending = options.api.detail(recordingId, { signal });
      detailCache.set(recordingId, pending);
      pending.catch(() => detailCache.delete(recordingId));
    }
    return pending;
  };
  /** A fresh detail (status may have changed since any cached one). */
  const fetchDetail = (recordingId: string, signal: AbortSignal): Promise<RecordingDetail> => {
    detailCache.delete(recordingId);
    return getDetail(recordingId, signal);
  };

  return {
    dialect: 'recording-api',
    // The search's page size (the client's default, the contract's maximum).
    pageSize: 100,

    async *listWindow(window: ListWindow, signal: AbortSignal): AsyncIterable<ListedPage> {
      for await (const page of options.api.list(window, { signal })) {
        const now = options.now();
        const byStatus: Record<string, number> = {};
        for (const r of page) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
        const jobs = page.flatMap((r) => jobsFor(options, r, now));
        yield { jobs: admitted(options, jobs), listed: page.length, byStatus };
      }
    },

    recheckWaiting: (signal) => recheckWaiting(options, signal),

    async preflight(job: JobRow, signal: AbortSignal): Promise<JobOutcome | undefined> {
      if (job.channel === 'combined') return undefined;
      const detail = await getDetail(job.recordingId, signal);
      if (detail.availableChannels.includes(job.channel)) return undefined;
      return options.channelFallback === 'combined'
        ? { kind: 'fallback', reason: 'fell back to combined' }
        : { kind: 'final', state: 'media_unavailable', reason: `channel ${job.channel} was never captured` };
    },

    async mediaLink(job: JobRow, signal: AbortSignal): Promise<LinkAnswer> {
      const link = await options.api.downloadUrl(job.recordingId, job.channel, { signal });
      return { link };
    },

    async mediaMissing(job, what, signal): Promise<JobOutcome | undefined> {
      if (what === 'incomplete') {
        // The Processing trap serves an object shorter than announced; a
        // recording that is really Available and still differs is corrupt.
        return processingTrap(await fetchDetail(job.recordingId, signal), 'media incomplete');
      }
      const defaultEnd = retentionEnd(options, job.meta.createdDate);
      if (defaultEnd <= options.now()) {
        return { kind: 'final', state: 'purged', reason: 'media purged by retention' };
      }
      let detail: RecordingDetail;
      try {
        detail = await fetchDetail(job.recordingId, signal);
      } catch (err) {
        if (err instanceof CxrecError && err.code === 'not_found') {
          return { kind: 'final', state: 'purged', reason: 'recording no longer exists' };
        }
        throw err;
      }
      const trapped = processingTrap(detail, 'media missing');
      if (trapped) return trapped;
      const expires = detail.retentionExpiresAt == null ? defaultEnd : Date.parse(detail.retentionExpiresAt);
      if (expires <= options.now()) {
        return { kind: 'final', state: 'purged', reason: 'media purged by retention' };
      }
      return {
        kind: 'retry',
        error: new CxrecError(
          'media_missing',
          'media answered 404 for an Available recording within retention',
          {
            context: { recordingId: job.recordingId, channel: job.channel },
            retryable: true,
          },
        ),
      };
    },
  };
}

/**
 * The Processing trap (contract §5): search said Available, but the media is
 * missing or short. A fresh detail decides: `Failed` settles the job, any
 * other status but `Available` sends it back to wait. Undefined when the
 * recording really is Available (the caller's fault to classify).
 */
function processingTrap(detail: RecordingDetail, what: string): JobOutcome | undefined {
  if (detail.status === 'Failed') {
    return { kind: 'final', state: 'failed_processing', reason: 'transcoding failed' };
  }
  if (detail.status !== 'Available') {
    return { kind: 'waiting', status: detail.status, reason: `${what} while ${detail.status}` };
  }
  return undefined;
}

/** The rows of recordings the selection admits (all without one). */
function admitted(ctx: Pick<RecordingApiSourceOptions, 'admit'>, jobs: DiscoveredJob[]): DiscoveredJob[] {
  const { admit } = ctx;
  return admit ? jobs.filter((j) => admit(j.meta)) : jobs;
}

/** The rows a listed recording becomes: one per wanted channel, all in the same state. */
export function jobsFor(
  ctx: Pick<RecordingApiSourceOptions, 'channels' | 'retentionDays' | 'pollSeconds' | 'maxProcessingMinutes'>,
  recording: Recording,
  now: number,
): DiscoveredJob[] {
  const verdict = classify(ctx, recording, now);
  const meta = {
    recordingId: recording.recordingId,
    contactId: recording.contactId,
    status: recording.status,
    createdDate: recording.createdDate,
    durationSeconds: recording.durationSeconds,
    direction: recording.direction,
    agentId: recording.agentId,
    skillName: recording.skillName,
  };
  return ctx.channels.map((channel) => ({ recordingId: recording.recordingId, channel, meta, ...verdict }));
}

type Verdict = Pick<DiscoveredJob, 'state' | 'reason' | 'nextRunAt'>;

export function classify(
  ctx: Pick<RecordingApiSourceOptions, 'retentionDays' | 'pollSeconds' | 'maxProcessingMinutes'>,
  recording: Pick<Recording, 'status' | 'createdDate'>,
  now: number,
): Verdict {
  const tooOld = outOfRetention(ctx, recording.createdDate, now);
  if (tooOld) return { ...tooOld, nextRunAt: now };
  switch (recording.status) {
    case 'Available':
      return { state: 'pending', nextRunAt: now };
    case 'Failed':
      return { state: 'failed_processing', reason: 'transcoding failed', nextRunAt: now };
    default: {
      const givenUp = processingGivenUp(ctx, recording.createdDate, recording.status, now);
      if (givenUp) return { ...givenUp, nextRunAt: now };
      return { state: 'waiting', nextRunAt: now + ctx.pollSeconds * 1000 };
    }
  }
}

/** Re-checks every waiting row that is due, at the cost of two listings of their window. */
async function recheckWaiting(ctx: RecordingApiSourceOptions, signal: AbortSignal): Promise<RecheckResult> {
  const now = ctx.now();
  const due = await ctx.ledger.list({ states: ['waiting'], dueBefore: now });
  if (due.length === 0) return { due: 0, becameAvailable: 0, settled: 0 };

  const window = spanOf(due);
  const notReady = await listAll(ctx, { ...window, statuses: ['Recording', 'Processing'] }, signal);
  const failed = await listAll(ctx, { ...window, statuses: ['Failed'] }, signal);

  const byId = new Map<string, JobRow[]>();
  for (const row of due) byId.set(row.recordingId, [...(byId.get(row.recordingId) ?? []), row]);

  const later = ctx.now();
  const jobs: DiscoveredJob[] = [];
  const available: string[] = [];
  let settled = 0;
  for (const [id, rows] of byId) {
    const listed = failed.get(id) ?? notReady.get(id);
    if (!listed) {
      available.push(id);
      continue;
    }
    for (const row of rows) {
      const verdict = classify(ctx, listed, later);
      if (verdict.state !== 'waiting') settled++;
      jobs.push({
        recordingId: id,
        channel: row.channel,
        meta: { ...row.meta, status: listed.status },
        ...verdict,
        nextRunAt:
          verdict.state === 'waiting' ? nextRecheckAt(ctx.pollSeconds, row.firstSeenAt, later) : later,
      });
    }
  }
  // Recordings indexed late into this span turn up here too: record them.
  for (const r of [...notReady.values(), ...failed.values()]) {
    if (!byId.has(r.recordingId)) jobs.push(...admitted(ctx, jobsFor(ctx, r, later)));
  }
  await ctx.ledger.upsertDiscovered(jobs);
  const becameAvailable = available.length === 0 ? 0 : await ctx.ledger.markAvailable(available, later);
  ctx.log.debug({ due: due.length, available: available.length, settled }, 'waiting recordings re-checked');
  return { due: due.length, becameAvailable, settled };
}

async function listAll(
  ctx: RecordingApiSourceOptions,
  window: ApiListWindow,
  signal: AbortSignal,
): Promise<Map<string, Recording>> {
  const out = new Map<string, Recording>();
  for await (const page of ctx.api.list(window, { signal })) {
    for (const r of page) out.set(r.recordingId, r);
  }
  return out;
}

/** The smallest window holding every row: createdDate has one-second resolution, so `to` is the last second + 1 s. */
function spanOf(rows: readonly JobRow[]): { from: string; to: string } {
  let min = Infinity;
  let max = -Infinity;
  for (const row of rows) {
    const t = Date.parse(row.meta.createdDate);
    if (t < min) min = t;
    if (t > max) max = t;
  }
  return {
    from: new Date(Math.floor(min / 1000) * 1000).toISOString(),
    to: new Date(Math.floor(max / 1000) * 1000 + 1000).toISOString(),
  };
}
