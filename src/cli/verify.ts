import { Command } from 'commander';

import { describeError } from '../errors.js';
import { StreamDigests } from '../pipeline/digests.js';
import { openState, openStore } from '../runtime.js';
import { commandContext, shutdownSignal } from './command-context.js';

export function verifyCommand(): Command {
  return new Command('verify')
    .description('Re-reads every stored object and checks its size and md5 (and sha256) against the ledger.')
    .addHelpText('after', '\nExit codes: 0 all match; 1 a mismatch or a missing object; 2 bad settings.')
    .action(async (_opts: unknown, command: Command) => {
      const { config, log } = commandContext(command);
      const ledger = await openState(config);
      const store = await openStore(config);
      const shutdown = shutdownSignal(log);
      let checked = 0;
      const problems: string[] = [];
      try {
        for await (const row of ledger.listStored()) {
          if (shutdown.signal.aborted) break;
          const expected = row.stored;
          if (!expected) continue;
          checked++;
          const where = `${row.recordingId} ${row.channel} (${expected.key})`;
          const digests = new StreamDigests();
          try {
            await digests.consume(
              await store.read(expected.key, { signal: shutdown.signal }),
              shutdown.signal,
            );
            const got = digests.digest();
            if (got.sizeBytes !== expected.sizeBytes) {
              problems.push(`${where}: size ${got.sizeBytes}, ledger says ${expected.sizeBytes}`);
            } else if (got.md5 !== expected.md5 || got.sha256 !== expected.sha256) {
              problems.push(`${where}: content differs (md5 ${got.md5}, ledger says ${expected.md5})`);
            }
          } catch (err) {
            problems.push(`${where}: cannot be read: ${describeError(err).message}`);
          }
          if (checked % 100 === 0) log.info({ checked, problems: problems.length }, 'verifying');
        }
      } finally {
        shutdown.dispose();
        await store.close?.();
        await ledger.close();
      }
      for (const p of problems) process.stdout.write(`MISMATCH ${p}\n`);
      process.stdout.write(
        `verified ${checked} stored objects in ${store.location}: ${checked - problems.length} ok, ${problems.length} mismatched or missing\n`,
      );
      process.exitCode = problems.length > 0 || shutdown.received() ? 1 : 0;
    });
}
