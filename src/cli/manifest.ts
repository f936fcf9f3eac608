import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

import { Command, Option } from 'commander';

import { CxrecError } from '../errors.js';
import { contactColumns, contactFields } from '../pipeline/contact-fields.js';
import { openState } from '../runtime.js';
import { commandContext } from './command-context.js';

const columns = ['recordingId', 'channel', 'key', 'sizeBytes', 'md5', 'sha256', 'storedAt'] as const;

export function manifestCommand(): Command {
  return new Command('manifest')
    .description(
      'One line per stored object: recordingId, channel, key, sizeBytes, md5, sha256, storedAt; ' +
        "for CXONE_DIALECT=platform also the contact fields (every leg's contactId, start, duration, " +
        'direction, from/to, agent, skill).',
    )
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .option('--output <file>', 'write to FILE instead of stdout')
    .action(async (opts: { format: 'jsonl' | 'csv'; output?: string }, command: Command) => {
      const { config } = commandContext(command);
      const ledger = await openState(config);
      const out: Writable =
        opts.output === undefined ? process.stdout : createWriteStream(opts.output, { mode: 0o640 });
      if (opts.output !== undefined) {
        await Promise.race([
          once(out, 'open'),
          once(out, 'error').then(([err]) => {
            throw new CxrecError(
              'usage',
              `--output ${opts.output ?? ''}: cannot write the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
            );
          }),
        ]);
      }
      try {
        // Platform rows carry contact fields; CSV gets their columns only in
        // that dialect, so a recording-api manifest keeps its exact header.
        const withContact = config.dialect === 'platform';
        const header = withContact ? [...columns, ...contactColumns] : columns;
        if (opts.format === 'csv') await write(out, `${header.join(',')}\n`);
        for await (const row of ledger.listStored()) {
          if (!row.stored) continue;
          const contact = contactFields(row.meta);
          const record: Record<string, unknown> = {
            recordingId: row.recordingId,
            channel: row.channel,
            key: row.stored.key,
            sizeBytes: row.stored.sizeBytes,
            md5: row.stored.md5,
            sha256: row.stored.sha256,
            storedAt: new Date(row.stored.storedAt).toISOString(),
            ...contact,
          };
          await write(
            out,
            opts.format === 'csv'
              ? `${header.map((c) => csvField(csvText(record[c]))).join(',')}\n`
              : `${JSON.stringify(record)}\n`,
          );
        }
      } finally {
        await ledger.close();
        if (out !== process.stdout) {
          out.end();
          await once(out, 'finish');
        }
      }
    });
}

function write(out: Writable, text: string): Promise<void> {
  return out.write(text) ? Promise.resolve() : once(out, 'drain').then(() => undefined);
}

/** A field's CSV text: lists joined with spaces (ids hold no spaces), absent fields empty. */
function csvText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.join(' ');
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Leading characters that make a spreadsheet run a cell as a formula (OWASP "CSV injection"). */
const formulaStart = /^[=+\-@\t\r]/;

/**
 * A CSV field: a cell a spreadsheet would run as a formula (leading `=`,
 * `+`, `-`, `@`, tab or CR) is prefixed with `'` and quoted, as OWASP
 * advises, so opening the manifest cannot run anything; otherwise RFC 4180
 * quoting only. Such a cell then differs from the id or key it shows by
 * that `'`: JSON lines keep every value exactly (README, `manifest`).
 */
export function csvField(value: string): string {
  if (formulaStart.test(value)) return `"'${value.replace(/"/g, '""')}"`;
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
