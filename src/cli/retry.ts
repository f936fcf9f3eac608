import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

import { Command } from 'commander';

import { CxrecError } from '../errors.js';
import { openState } from '../runtime.js';
import { assertRetryableState } from '../state/job-record.js';
import type { RetryFilter } from '../state/ledger.js';
import { commandContext } from './command-context.js';
import { parseInstant } from './export.js';

/** `--since`/`--until` left out: the whole ledger. */
const earliest = '1970-01-01T00:00:00Z';
const latest = '9999-12-31T23:59:59Z';

export function retryCommand(): Command {
  return new Command('retry')
    .description(
      'Put settled rows back to work (default: the failed ones), so the next `cxrec export` of their ' +
        'window, or a running `cxrec run`, tries them again; prints how many rows moved. Fix the cause ' +
        'first (see `cxrec status` for the reasons).',
    )
    .option(
      '--state <state>',
      'the final state to retry: failed, failed_processing, purged, media_unavailable or ' +
        'out_of_retention (stored is refused: nothing is fetched twice)',
      'failed',
    )
    .option(
      '--reason <text>',
      'only rows whose reason contains TEXT, ignoring case (a plain substring, no wildcards; ' +
        '`cxrec status` shows the reasons)',
    )
    .option('--since <iso>', 'only recordings created at or after this instant')
    .option('--until <iso>', 'only recordings created before this instant')
    .addHelpText(
      'after',
      '\nRows move to `pending`, due at once, with their attempts reset and their reason cleared (the last\n' +
        'error stays until the next one). Exit codes: 0 done (also when no row matched); 2 bad usage\n' +
        '(e.g. --state stored) or settings, or no SQLite ledger at CXREC_STATE.',
    )
    .action(
      async (opts: { state: string; reason?: string; since?: string; until?: string }, command: Command) => {
        const { config } = commandContext(command);
        assertRetryableState(opts.state);
        const from = opts.since === undefined ? undefined : parseInstant(opts.since, '--since');
        const to = opts.until === undefined ? undefined : parseInstant(opts.until, '--until');
        if (from && to && from.getTime() >= to.getTime()) {
          throw new CxrecError(
            'usage',
            `--since must be before --until (got ${from.toISOString()} ≥ ${to.toISOString()})`,
          );
        }
        if (opts.reason?.trim() === '') throw new CxrecError('usage', '--reason must not be empty');
        // A ledger file that is not there is a wrong CXREC_STATE, not an empty ledger to create.
        if (config.stateTarget.kind === 'sqlite' && !existsSync(resolve(config.stateTarget.path))) {
          throw new CxrecError(
            'config_invalid',
            `no ledger at ${resolve(config.stateTarget.path)}; point CXREC_STATE at the ledger export/run use`,
          );
        }
        const filter: RetryFilter = {
          state: opts.state as RetryFilter['state'],
          now: Date.now(),
          ...(opts.reason === undefined ? {} : { reasonContains: opts.reason }),
          ...(from || to
            ? { created: { from: from?.toISOString() ?? earliest, to: to?.toISOString() ?? latest } }
            : {}),
        };
        const ledger = await openState(config);
        let moved: number;
        try {
          moved = await ledger.retrySettled(filter);
        } finally {
          await ledger.close();
        }
        const what = [
          `state ${filter.state}`,
          ...(filter.reasonContains === undefined
            ? []
            : [`reason containing ${JSON.stringify(filter.reasonContains)}`]),
          ...(from ? [`created since ${from.toISOString()}`] : []),
          ...(to ? [`created before ${to.toISOString()}`] : []),
        ].join(', ');
        process.stdout.write(
          moved === 0
            ? `No rows matched (${what}); nothing changed.\n`
            : `${moved} row${moved === 1 ? '' : 's'} put back to pending (${what}).\n` +
                'The next `cxrec export` of their window, or a running `cxrec run`, fetches them.\n',
        );
      },
    );
}
