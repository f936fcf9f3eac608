import { Command } from 'commander';

import { describeError } from '../errors.js';
import { StreamDigests } from '../pipeline/digests.js';
import { openState, openStore } from '../runtime.js';
import { commandContext, shutdownSignal } from './command-context.js';
import { formatBytes, formatDuration } from './progress-display.js';

export interface VerifyProgress {
  phase: 'verifying' | 'done' | 'stopping';
  checked: number;
  total: number;
  problems: number;
  bytes: number;
  elapsedMs: number;
}

export function verifyCommand(): Command {
  return new Command('verify')
    .description('Re-reads every stored object and checks its size and md5 (and sha256) against the ledger.')
    .addHelpText(
      'after',
      '\nExit codes: 0 all match; 1 a mismatch or a missing object; 2 bad settings.\n' +
        'Each mismatch is printed to stdout as it is found, then the summary; progress goes to stderr.',
    )
    .action(async (_opts: unknown, command: Command) => {
      const { config, log } = commandContext(command);
      const ledger = await openState(config);
      const store = await openStore(config);
      const shutdown = shutdownSignal(log);
      const display = verifyDisplay();
      const started = Date.now();
      const progress: VerifyProgress = {
        phase: 'verifying',
        checked: 0,
        total: 0,
        problems: 0,
        bytes: 0,
        elapsedMs: 0,
      };
      const report = (phase: VerifyProgress['phase']): void => {
        display.update({ ...progress, phase, elapsedMs: Date.now() - started });
      };
      try {
        // Counted by the database; the rows themselves stream in keyset pages, so memory stays flat.
        progress.total = (await ledger.countRows({ states: ['stored'] })).byState.stored ?? 0;
        report('verifying');
        for await (const row of ledger.listStored()) {
          if (shutdown.signal.aborted) break;
          const expected = row.stored;
          if (!expected) continue;
          progress.checked++;
          const where = `${row.recordingId} ${row.channel} (${expected.key})`;
          const digests = new StreamDigests();
          let problem: string | undefined;
          try {
            await digests.consume(
              await store.read(expected.key, { signal: shutdown.signal }),
              shutdown.signal,
            );
            const got = digests.digest();
            progress.bytes += got.sizeBytes;
            if (got.sizeBytes !== expected.sizeBytes) {
              problem = `${where}: size ${got.sizeBytes}, ledger says ${expected.sizeBytes}`;
            } else if (got.md5 !== expected.md5 || got.sha256 !== expected.sha256) {
              problem = `${where}: content differs (md5 ${got.md5}, ledger says ${expected.md5})`;
            }
          } catch (err) {
            problem = `${where}: cannot be read: ${describeError(err).message}`;
          }
          if (problem !== undefined) {
            // Printed as found: a million mismatches are not held in memory.
            progress.problems++;
            process.stdout.write(`MISMATCH ${problem}\n`);
          }
          report('verifying');
        }
        report(shutdown.signal.aborted ? 'stopping' : 'done');
      } finally {
        display.done();
        shutdown.dispose();
        await store.close?.();
        await ledger.close();
      }
      const { checked, problems } = progress;
      process.stdout.write(
        `verified ${checked} stored objects in ${store.location}: ${checked - problems} ok, ${problems} mismatched or missing\n`,
      );
      process.exitCode = problems > 0 || shutdown.received() ? 1 : 0;
    });
}

/**
 * Like export's progress: on a terminal one line redrawn in place (at most
 * every 200 ms); otherwise a JSON line every 10 s and one at the end. Both
 * on stderr; stdout carries the result.
 */
export function verifyDisplay(
  stream: NodeJS.WriteStream = process.stderr,
  intervalMs = 10_000,
): { update(p: VerifyProgress): void; done(): void } {
  let last = -Infinity;
  let width = 0;
  const tty = stream.isTTY;
  return {
    update(p) {
      const now = Date.now();
      const final = p.phase !== 'verifying';
      if (now - last < (tty ? 200 : intervalMs) && !final) return;
      last = now;
      const bytesPerSecond = p.elapsedMs > 0 ? Math.round((p.bytes * 1000) / p.elapsedMs) : 0;
      if (!tty) {
        stream.write(
          `${JSON.stringify({ progress: { ...p, bytesPerSecond }, time: new Date(now).toISOString() })}\n`,
        );
        return;
      }
      const line =
        `${p.phase}: ${p.checked}/${p.total} checked · ${p.problems} mismatched or missing · ` +
        `${formatBytes(p.bytes)} · ${formatBytes(bytesPerSecond)}/s · ${formatDuration(p.elapsedMs)}`;
      stream.write(`\r${line.padEnd(width)}`);
      width = line.length;
    },
    done() {
      if (tty && width > 0) stream.write('\n');
    },
  };
}
