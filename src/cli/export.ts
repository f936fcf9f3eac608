import { hostname } from 'node:os';

import { Command, Option } from 'commander';

import { CxrecError, describeError } from '../errors.js';
import { countsFields, createNotifier, type Notification } from '../notify.js';
import { runExport, type ExportSummary } from '../pipeline/export-job.js';
import { openPipeline } from '../pipeline/runner.js';
import { isWholeWindow, selects } from '../pipeline/selection.js';
import { groupReasons } from '../reason-groups.js';
import { retriesByKind, retriesSoFar } from '../retry-tally.js';
import { stderrStatusLine } from '../terminal.js';
import { commandContext, shutdownSignal } from './command-context.js';
import { dryRunExport } from './export-dry-run.js';
import {
  exportExitCode,
  formatNotFound,
  idsNotListed,
  parseSelection,
  selectionHelp,
  selectionOptions,
  startExportRecord,
  type ExportFlags,
} from './export-selection.js';
import { formatBytes, formatDuration, progressDisplay } from './progress-display.js';

/** How long an ending export waits for its notification, at most. */
export const notifyWaitMs = 10_000;

export function exportCommand(): Command {
  return new Command('export')
    .description(
      'Back up one window of recordings: since ≤ createdDate < until. Discovers, waits for recordings still ' +
        'Processing, downloads, verifies and stores each one, and returns once every recording of the window ' +
        'is settled and a last listing of the window finds nothing new.',
    )
    .addOption(
      new Option(
        '--since <iso>',
        'start of the window, inclusive (e.g. 2024-01-15T00:00:00Z)',
      ).makeOptionMandatory(),
    )
    .option('--until <iso>', 'end of the window, exclusive; not in the future (default: now)')
    .option(
      '--dry-run',
      'list the window only and print what an export would fetch and how long the budget needs; ' +
        'no media, nothing stored, the ledger untouched (not even created)',
    )
    .addOption(selectionOptions.ids)
    .addOption(selectionOptions.agent)
    .addOption(selectionOptions.skill)
    .addOption(selectionOptions.direction)
    .addHelpText(
      'after',
      '\nExit codes: 0 every recording settled and none failed; 1 some failed; 2 bad usage or settings;\n' +
        '3 cannot reach CXone or auth refused; 130/143 stopped by SIGINT/SIGTERM (re-run to continue).\n' +
        'Progress goes to stderr, the summary to stdout.\n' +
        selectionHelp,
    )
    .action(async (opts: ExportFlags, command: Command) => {
      const { config, log } = commandContext(command);
      const now = new Date();
      const since = parseInstant(opts.since, '--since');
      const until = opts.until === undefined ? now : parseInstant(opts.until, '--until');
      if (until.getTime() > now.getTime() + 1000) {
        throw new CxrecError(
          'usage',
          `--until ${opts.until ?? ''} is in the future; recordings still to come are \`cxrec run\`'s job`,
        );
      }
      if (since.getTime() >= until.getTime()) {
        throw new CxrecError(
          'usage',
          `--since must be before --until (got ${since.toISOString()} ≥ ${until.toISOString()})`,
        );
      }

      const selection = await parseSelection(opts);
      if (opts.dryRun) {
        await dryRunExport(config, log, { since, until, selection });
        return;
      }

      const started = Date.now();
      const pipeline = await openPipeline(config, log, { selection });
      const recorded = await startExportRecord(pipeline.ledger, { since, until, selection, config }).catch(
        async (err: unknown) => {
          await pipeline.close();
          throw err;
        },
      );
      const shutdown = shutdownSignal(log);
      const notifier =
        config.notifyUrl === undefined
          ? undefined
          : createNotifier({ url: config.notifyUrl, log, backoffSeconds: config.backoffSeconds });
      const display = progressDisplay({
        status: stderrStatusLine(),
        extras: () => ({
          retries: retriesSoFar(),
          apiCalls: pipeline.cxone.apiStats.total(),
          apiLimitPerMinute: config.rateLimitPerMinute,
        }),
      });
      const window = { since: since.toISOString(), until: until.toISOString() };
      let summary: ExportSummary;
      let notFound: string[] = [];
      try {
        try {
          summary = await runExport({
            ...pipeline,
            since,
            until,
            log,
            signal: shutdown.signal,
            onProgress: (p) => display.update(p),
            ...(isWholeWindow(selection) ? {} : { select: (meta) => selects(selection, meta) }),
          });
          notFound = await idsNotListed(pipeline.ledger, selection, { since, until });
        } catch (err) {
          await recorded.finish({ failure: err, signal: shutdown.received() }, log);
          throw err;
        }
        await recorded.finish({ summary, signal: shutdown.received() }, log);
      } catch (err) {
        display.done();
        if (notifier) {
          notifier.send(exportFailedNotification(window, err, Date.now() - started));
          await notifier.settle(notifyWaitMs);
        }
        throw err;
      } finally {
        display.done();
        shutdown.dispose();
        await pipeline.close();
      }
      const calls = pipeline.cxone.apiStats.total();
      process.stdout.write(formatSummary(summary, calls, retriesByKind()));
      if (notFound.length > 0) process.stdout.write(formatNotFound(notFound, selection));
      process.exitCode = exportExitCode({ summary, signal: shutdown.received() });
      if (notifier) {
        notifier.send(exportNotification(window, summary, process.exitCode, calls));
        await notifier.settle(notifyWaitMs);
      }
    });
}

/** What `CXREC_NOTIFY_URL` receives when an export ends. */
export function exportNotification(
  window: { since: string; until: string },
  s: ExportSummary,
  exitCode: number,
  apiCalls: number,
): Notification {
  const host = hostname();
  const { counts, reasons } = countsFields(s.byState);
  const shown = Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([state, n]) => `${n} ${state}`);
  if (s.unsettled > 0) shown.push(`${s.unsettled} not settled`);
  const how = s.interrupted ? 'stopped before the end' : 'finished';
  return {
    text:
      `cxrec export ${window.since} – ${window.until} on ${host} ${how}: ${shown.join(', ') || 'nothing in the window'} ` +
      `(${formatBytes(s.bytesDownloaded)} in ${formatDuration(s.elapsedMs)}); exit ${exitCode}`,
    event: 'export_finished',
    host,
    window,
    exitCode,
    interrupted: s.interrupted,
    total: s.total,
    unsettled: s.unsettled,
    counts,
    reasons,
    bytes: s.bytesDownloaded,
    durationSeconds: Math.round(s.elapsedMs / 1000),
    apiCalls,
    retries: retriesSoFar(),
  };
}

/** What `CXREC_NOTIFY_URL` receives when an export stops on an error (exit 3, say). */
export function exportFailedNotification(
  window: { since: string; until: string },
  err: unknown,
  elapsedMs: number,
): Notification {
  const host = hostname();
  const exitCode = err instanceof CxrecError ? err.exitCode : 1;
  const { code, message } = describeError(err);
  return {
    text: `cxrec export ${window.since} – ${window.until} on ${host} stopped: ${message}; exit ${exitCode}`,
    event: 'export_finished',
    host,
    window,
    exitCode,
    interrupted: true,
    error: { code, message },
    durationSeconds: Math.round(elapsedMs / 1000),
    retries: retriesSoFar(),
  };
}

/** ISO-8601 with a date and, when a time is given, a zone (`Z` or `±hh:mm`); a bare date is UTC midnight. */
export function parseInstant(value: string, flag: string): Date {
  const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(value);
  const date = new Date(/T/.test(value) ? value : `${value}T00:00:00Z`);
  if (!ok || Number.isNaN(date.getTime())) {
    throw new CxrecError(
      'usage',
      `${flag} ${JSON.stringify(value)} is not an ISO-8601 instant (examples: 2024-01-15, 2024-01-15T08:00:00Z, 2024-01-15T09:00:00+01:00)`,
    );
  }
  return date;
}

export function formatSummary(
  s: ExportSummary,
  apiCalls: number,
  retries: Readonly<Record<string, number>> = {},
): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(
    s.interrupted ? 'Export stopped before the end (run it again to continue).' : 'Export finished.',
  );
  lines.push('');
  const rows: [string, string, number][] = [];
  for (const [state, reasons] of Object.entries(s.byState)) {
    for (const [reason, n] of Object.entries(groupReasons(reasons))) rows.push([state, reason, n]);
  }
  rows.sort((a, b) => a[0].localeCompare(b[0]) || b[2] - a[2]);
  if (s.unsettled > 0) rows.push(['(not settled yet)', '', s.unsettled]);
  const w0 = Math.max(5, ...rows.map((r) => r[0].length));
  const w1 = Math.max(6, ...rows.map((r) => r[1].length));
  lines.push(`${'state'.padEnd(w0)}  ${'reason'.padEnd(w1)}  count`);
  lines.push(`${'-'.repeat(w0)}  ${'-'.repeat(w1)}  -----`);
  for (const [state, reason, n] of rows)
    lines.push(`${state.padEnd(w0)}  ${reason.padEnd(w1)}  ${String(n).padStart(5)}`);
  lines.push(`${'total'.padEnd(w0)}  ${''.padEnd(w1)}  ${String(s.total).padStart(5)}`);
  lines.push('');
  const stored = Object.values(s.byState.stored ?? {}).reduce((a, b) => a + b, 0);
  lines.push(
    `${formatBytes(s.bytesDownloaded)} downloaded in ${formatDuration(s.elapsedMs)}; ` +
      `${apiCalls} API calls (${stored > 0 ? (apiCalls / stored).toFixed(3) : '-'} per stored object), ${s.listings} full listings.`,
  );
  const retried = Object.entries(retries).filter(([, n]) => n > 0);
  if (retried.length > 0) {
    const total = retried.reduce((a, [, n]) => a + n, 0);
    lines.push(
      `${total} transient fault${total === 1 ? '' : 's'} absorbed by retries (${retried.map(([k, n]) => `${k} ${n}`).join(', ')}); details at CXREC_LOG_LEVEL=debug.`,
    );
  }
  lines.push('');
  return lines.join('\n');
}
