/**
 * Discovery: what recordings exist, and what each one is owed.
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
 * short object) and sends it back to waiting.
 */
import type { Logger } from '../log.js';
import type { Channel, DiscoveredJob, JobRow, Ledger } from '../state/ledger.js';
import type { ListWindow, Recording, RecordingApi } from './recording-api.js';
import { outOfRetention, processingGivenUp } from './recording-policy.js';

export interface DiscoverContext {
  api: RecordingApi;
  ledger: Ledger;
  channels: readonly Channel[];
  retentionDays: number;
  pollSeconds: number;
  maxProcessingMinutes: number;
  log: Logger;
  now(): number;
}

export interface DiscoverResult {
  listed: number;
  inserted: number;
  /** Listed recordings by platform status. */
  byStatus: Record<string, number>;
}

/** Lists the whole window and records every recording of it. */
export async function discoverWindow(
  ctx: DiscoverContext,
  window: ListWindow,
  signal: AbortSignal,
): Promise<DiscoverResult> {
  const result: DiscoverResult = { listed: 0, inserted: 0, byStatus: {} };
  for await (const page of ctx.api.list(window, { signal })) {
    const now = ctx.now();
    const jobs = page.flatMap((r) => jobsFor(ctx, r, now));
    const { inserted } = await ctx.ledger.upsertDiscovered(jobs);
    result.inserted += inserted;
    result.listed += page.length;
    for (const r of page) result.byStatus[r.status] = (result.byStatus[r.status] ?? 0) + 1;
  }
  ctx.log.debug({ ...window, ...result }, 'window listed');
  return result;
}

/** The rows a listed recording becomes: one per wanted channel, all in the same state. */
export function jobsFor(
  ctx: Pick<DiscoverContext, 'channels' | 'retentionDays' | 'pollSeconds' | 'maxProcessingMinutes'>,
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
  ctx: Pick<DiscoverContext, 'retentionDays' | 'pollSeconds' | 'maxProcessingMinutes'>,
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

/**
 * When a recording still not Available is next looked at: the first wait is
 * `CXREC_POLL_SECONDS`, then about as long as it has already waited (so the
 * waits double), at most 16 × the first.
 */
export function nextRecheckAt(pollSeconds: number, firstSeenAt: number, now: number): number {
  const poll = pollSeconds * 1000;
  return now + Math.min(Math.max(poll, now - firstSeenAt), 16 * poll);
}

export interface RecheckResult {
  due: number;
  becameAvailable: number;
  settled: number;
}

/** Re-checks every waiting row that is due, at the cost of two listings of their window. */
export async function recheckWaiting(ctx: DiscoverContext, signal: AbortSignal): Promise<RecheckResult> {
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
    if (!byId.has(r.recordingId)) jobs.push(...jobsFor(ctx, r, later));
  }
  await ctx.ledger.upsertDiscovered(jobs);
  const becameAvailable = available.length === 0 ? 0 : await ctx.ledger.markAvailable(available, later);
  ctx.log.debug({ due: due.length, available: available.length, settled }, 'waiting recordings re-checked');
  return { due: due.length, becameAvailable, settled };
}

async function listAll(
  ctx: DiscoverContext,
  window: ListWindow,
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
