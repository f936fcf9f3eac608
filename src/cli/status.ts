import { Command } from 'commander';

import { openState } from '../runtime.js';
import { commandContext } from './command-context.js';
import { formatBytes } from './progress-display.js';

export function statusCommand(): Command {
  return new Command('status')
    .description('Counts of the ledger by state and by reason, the backlog and the last error.')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { config } = commandContext(command);
      const ledger = await openState(config);
      try {
        const counts = await ledger.counts();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ledger: ledger.location, ...counts }, null, 2)}\n`);
          return;
        }
        const lines = [`ledger: ${ledger.location}`, ''];
        const states = Object.entries(counts.byState).sort(([a], [b]) => a.localeCompare(b));
        if (states.length === 0) lines.push('no recordings yet');
        for (const [state, n] of states) {
          lines.push(`${state.padEnd(18)} ${String(n).padStart(8)}`);
          const reasons = counts.byReason[state as keyof typeof counts.byReason] ?? {};
          for (const [reason, m] of Object.entries(reasons).sort((a, b) => b[1] - a[1])) {
            if (reason !== '') lines.push(`  ${reason.slice(0, 60).padEnd(60)} ${String(m).padStart(6)}`);
          }
        }
        lines.push('');
        lines.push(
          `backlog: ${counts.backlog}${counts.oldestBacklogCreatedDate ? ` (oldest created ${counts.oldestBacklogCreatedDate})` : ''}`,
        );
        lines.push(`stored: ${formatBytes(counts.storedBytes)}`);
        if (counts.lastError) {
          const e = counts.lastError;
          lines.push(
            `last error: ${new Date(e.at).toISOString()} ${e.recordingId}/${e.channel} ${e.code}: ${e.message}`,
          );
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        await ledger.close();
      }
    });
}
