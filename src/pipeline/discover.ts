/**
 * Discovery: what recordings exist, and what each one is owed. The
 * dialect's source lists and classifies (`recording-source.ts`); this
 * module records each page in the ledger and counts what it found, the
 * same way for both dialects.
 */
import type { Logger } from '../log.js';
import type { Ledger } from '../state/ledger.js';
import type { ListedPage, ListWindow, RecheckResult, RecordingSource } from './recording-source.js';

export type { RecheckResult } from './recording-source.js';

export interface DiscoverContext {
  source: RecordingSource;
  ledger: Ledger;
  log: Logger;
  now(): number;
}

export interface DiscoverResult {
  listed: number;
  inserted: number;
  /** Listed items by the API's status. */
  byStatus: Record<string, number>;
  /** The index moved while paging (`ListedPage.shifted`): the listing is not a complete one. */
  shifted?: boolean;
  /** `listUpdatedSince` only: where the next listing should start (less an overlap). */
  pollTime?: string | undefined;
}

/** Lists the whole window and records every recording of it. */
export async function discoverWindow(
  ctx: DiscoverContext,
  window: ListWindow,
  signal: AbortSignal,
): Promise<DiscoverResult> {
  const result = await record(ctx, ctx.source.listWindow(window, signal));
  ctx.log.debug({ ...window, ...result }, 'window listed');
  return result;
}

/** Lists what changed since `since` (dialects that can) and records it. */
export async function discoverUpdatedSince(
  ctx: DiscoverContext,
  since: string,
  signal: AbortSignal,
): Promise<DiscoverResult> {
  const { source } = ctx;
  if (!source.listUpdatedSince)
    throw new TypeError(`the ${source.dialect} dialect cannot list by update time`);
  const result = await record(ctx, source.listUpdatedSince(since, signal));
  ctx.log.debug({ since, ...result }, 'changes listed');
  return result;
}

/** Re-checks the due rows that wait on the platform, as the dialect does it. */
export function recheckWaiting(ctx: DiscoverContext, signal: AbortSignal): Promise<RecheckResult> {
  return ctx.source.recheckWaiting(signal);
}

async function record(
  ctx: DiscoverContext,
  pages: AsyncIterable<ListedPage & { pollTime?: string }>,
): Promise<DiscoverResult> {
  const result: DiscoverResult = { listed: 0, inserted: 0, byStatus: {} };
  for await (const page of pages) {
    if (page.jobs.length > 0) {
      const { inserted } = await ctx.ledger.upsertDiscovered(page.jobs);
      result.inserted += inserted;
    }
    result.listed += page.listed;
    for (const [status, n] of Object.entries(page.byStatus)) {
      result.byStatus[status] = (result.byStatus[status] ?? 0) + n;
    }
    if (page.pollTime !== undefined) result.pollTime = page.pollTime;
    if (page.shifted === true) result.shifted = true;
  }
  return result;
}
