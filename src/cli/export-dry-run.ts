/**
 * `cxrec export --dry-run`: lists the window with a limiter of this process
 * alone (like `doctor`, so no ledger file is opened, created or migrated),
 * and prints to stdout what an export would fetch and what it would cost.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { listForDryRun, noLedger, planDryRun, estimateBytesPerSecond } from '../pipeline/dry-run.js';
import { idsNotFound, isWholeWindow, selects, type Selection } from '../pipeline/selection.js';
import { openCxone } from '../runtime.js';
import { shutdownSignal } from './command-context.js';
import { formatNotFound } from './export-selection.js';
import { formatBytes, formatDuration } from './progress-display.js';

export async function dryRunExport(
  config: Config,
  log: Logger,
  what: { since: Date; until: Date; selection: Selection },
): Promise<void> {
  const { since, until, selection } = what;
  const cxone = await openCxone(config, log, { ownLimiter: true });
  const shutdown = shutdownSignal(log);
  let text: string;
  try {
    const settings = await cxone.connect(config, shutdown.signal);
    const source = cxone.source({ ledger: noLedger, settings, log, now: () => Date.now() });
    const window = { from: since.toISOString(), to: until.toISOString() };
    const listing = await listForDryRun(source, window, {
      ...(isWholeWindow(selection) ? {} : { select: (meta) => selects(selection, meta) }),
      signal: shutdown.signal,
    });
    const plan = planDryRun(listing, config);
    const platform = config.dialect === 'platform';
    const lines: string[] = [
      'Dry run: the window was listed only; nothing fetched, nothing stored, the ledger untouched.',
      `window: ${window.from} ≤ createdDate < ${window.to} (${config.dialect} dialect)`,
      '',
      `${platform ? 'contacts' : 'recordings'} listed: ${listing.listed} in ${listing.listingCalls} listing call(s)`,
    ];
    for (const [status, n] of Object.entries(listing.byStatus).sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`  status ${status}: ${n}`);
    }
    if (platform) lines.push(`calls (master contacts): ${listing.recordings}`);
    if (!isWholeWindow(selection)) {
      lines.push(`selected: ${plan.selectedRecordings} of ${listing.recordings} recordings`);
      const missing = idsNotFound(
        selection,
        listing.rows.map((r) => r.meta),
      );
      if (missing.length > 0) lines.push(formatNotFound(missing, selection).trimEnd());
    }
    lines.push('');
    lines.push('what an export would do (one object per recording and channel in CXREC_CHANNELS):');
    lines.push(`  fetch now: ${plan.fetchNow}`);
    lines.push(`  fetch once processed: ${plan.fetchLater}`);
    for (const [state, reasons] of Object.entries(plan.settled).sort(([a], [b]) => a.localeCompare(b))) {
      for (const [reason, n] of Object.entries(reasons)) {
        lines.push(`  settle ${state} without fetching${reason === '' ? '' : ` (${reason})`}: ${n}`);
      }
    }
    if (platform)
      lines.push('  (a call with several recordings becomes one object each: known at its playback call)');
    lines.push('  not counted: what the ledger already holds (a re-run fetches nothing already stored)');
    lines.push('');
    const perSecond = estimateBytesPerSecond[config.dialect];
    lines.push(
      plan.fetchNow + plan.fetchLater === 0
        ? 'estimated size: 0 B (nothing to fetch)'
        : plan.withDuration === 0
          ? 'estimated size: unknown (the listing gave no durations)'
          : `estimated size: about ${formatBytes(plan.estimatedBytes)}, from ${Math.round(plan.durationSeconds)} s of call ` +
            `time at ${formatBytes(perSecond)}/s per object (${platform ? 'MP4 audio at 32 kbit/s' : '8 kHz 16-bit mono WAV'}); ` +
            'the API announces no size before the media link, so this is an estimate',
    );
    const b = plan.budget;
    const parts = Object.entries(b.apiParts)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
    lines.push(
      `API budget: about ${b.apiCalls} calls (${parts}; the listing twice: first and final) at ` +
        `CXREC_RATE_LIMIT ${config.rateLimitPerMinute}/min: ${formatDuration(b.apiMinutes * 60_000)}`,
    );
    if (platform) {
      lines.push(
        `playback budget: at least ${b.playbackCalls} media-playback calls (one per recorded call; a call still ` +
          `processing costs one more per re-ask) at CXREC_PLAYBACK_LIMIT ${config.playbackLimit} per ` +
          `${config.playbackWindowSeconds} s: ${formatDuration(b.playbackMinutes * 60_000)}`,
      );
    } else if (plan.fetchLater > 0) {
      lines.push('  plus two listing calls per re-check of the recordings still processing');
    }
    lines.push(`time the budgets need: about ${formatDuration(b.minutes * 60_000)}`);
    text = `${lines.join('\n')}\n`;
  } finally {
    shutdown.dispose();
    await cxone.close();
  }
  process.stdout.write(text);
}
