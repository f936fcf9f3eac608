/**
 * `cxrec export`'s selection flags (`--ids`, `--agent`, `--skill`,
 * `--direction`), and the ledger's record of each export (`exports` table):
 * its window, its selection, and how it ended.
 */
import { Option } from 'commander';

import type { Config } from '../config.js';
import { CxrecError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ExportSummary } from '../pipeline/export-job.js';
import {
  describeSelection,
  directions,
  idsNotFound,
  readIdsFile,
  selects,
  type Direction,
  type Selection,
} from '../pipeline/selection.js';
import type { Ledger } from '../state/ledger.js';

export interface ExportFlags {
  since: string;
  until?: string;
  dryRun?: boolean;
  ids?: string;
  agent: string[];
  skill: string[];
  direction: string[];
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export const selectionOptions = {
  ids: new Option(
    '--ids <file>',
    'only these recordings or contacts: one id per line (blank lines and # comments ignored); ' +
      'recording-api: recordingId or contactId; platform: masterContactId or any leg contactId',
  ),
  agent: new Option(
    '--agent <agent>',
    'only calls of this agent (repeat for several): agentId; platform also the agent name, ignoring case',
  )
    .argParser(collect)
    .default([], 'any'),
  skill: new Option(
    '--skill <skill>',
    'only calls of this skill (repeat for several): skill name, ignoring case; platform also skillId',
  )
    .argParser(collect)
    .default([], 'any'),
  direction: new Option('--direction <direction>', 'only inbound or outbound calls')
    .argParser(collect)
    .default([], 'both'),
};

export const selectionHelp =
  '\nSelection: CXone lists only by date (and status), so --ids/--agent/--skill/--direction are applied\n' +
  'to what the listing of the window returns; every listing call is still made. Given together, a\n' +
  'recording must match each of them. Both dialects list agentId, skill name and direction; the\n' +
  'platform also the agent name and skillId. Rows outside the selection are not written to the ledger,\n' +
  'and the export ends once the selected recordings are settled. Ids of the file that match no selected\n' +
  'recording are printed after the summary. The ledger records each export and its selection.\n';

export async function parseSelection(flags: ExportFlags): Promise<Selection> {
  const bad = flags.direction.find((d) => !(directions as readonly string[]).includes(d.toLowerCase()));
  if (bad !== undefined) {
    throw new CxrecError('usage', `--direction ${JSON.stringify(bad)}: must be inbound or outbound`);
  }
  for (const [flag, values] of [
    ['--agent', flags.agent],
    ['--skill', flags.skill],
  ] as const) {
    if (values.some((v) => v.trim() === '')) throw new CxrecError('usage', `${flag} must not be empty`);
  }
  return {
    ...(flags.ids === undefined ? {} : { ids: await readIdsFile(flags.ids) }),
    ...(flags.agent.length ? { agents: flags.agent.map((a) => a.trim()) } : {}),
    ...(flags.skill.length ? { skills: flags.skill.map((s) => s.trim()) } : {}),
    ...(flags.direction.length
      ? { directions: [...new Set(flags.direction.map((d) => d.toLowerCase() as Direction))] }
      : {}),
  };
}

/** The ids of the file that no selected row of the window answers to. */
export async function idsNotListed(
  ledger: Ledger,
  selection: Selection,
  window: { since: Date; until: Date },
): Promise<string[]> {
  if (!selection.ids) return [];
  const rows = await ledger.list({
    created: { from: window.since.toISOString(), to: window.until.toISOString() },
  });
  return idsNotFound(
    selection,
    rows.filter((r) => selects(selection, r.meta)).map((r) => r.meta),
  );
}

export function formatNotFound(ids: readonly string[], selection: Selection): string {
  const shown = ids.slice(0, 20).map((id) => JSON.stringify(id));
  return (
    `${ids.length} of the ${selection.ids?.values.size ?? 0} ids in ${selection.ids?.file ?? '--ids'} ` +
    'matched no selected recording (not listed in the window, or left out by --agent/--skill/--direction): ' +
    shown.join(', ') +
    (ids.length > shown.length ? ', …\n' : '\n')
  );
}

/** `export`'s exit code: 0 only when every selected recording of the window is settled and none failed. */
export function exportExitCode(end: {
  summary?: ExportSummary | undefined;
  failure?: unknown;
  signal?: NodeJS.Signals | undefined;
}): number {
  if (end.signal) return end.signal === 'SIGINT' ? 130 : 143;
  if (end.failure !== undefined || !end.summary) {
    return end.failure instanceof CxrecError ? end.failure.exitCode : 1;
  }
  return end.summary.byState.failed || end.summary.unsettled > 0 ? 1 : 0;
}

/** The rows by state an export ended with, for `exports.counts`. */
function countsOf(summary: ExportSummary): Record<string, number> {
  const counts: Record<string, number> = { total: summary.total, unsettled: summary.unsettled };
  for (const [state, reasons] of Object.entries(summary.byState)) {
    counts[state] = Object.values(reasons).reduce((a, b) => a + b, 0);
  }
  return counts;
}

export interface ExportRecorder {
  /** Records how the export ended; a ledger that refuses it is logged, never fatal. */
  finish(
    end: { summary?: ExportSummary; failure?: unknown; signal?: NodeJS.Signals | undefined },
    log: Logger,
  ): Promise<void>;
}

export async function startExportRecord(
  ledger: Ledger,
  what: { since: Date; until: Date; selection: Selection; config: Pick<Config, 'dialect'> },
): Promise<ExportRecorder> {
  const id = await ledger.startExport({
    startedAt: Date.now(),
    since: what.since.toISOString(),
    until: what.until.toISOString(),
    selection: describeSelection(what.selection),
    dialect: what.config.dialect,
  });
  return {
    async finish(end, log) {
      try {
        await ledger.finishExport(id, {
          endedAt: Date.now(),
          exitCode: exportExitCode(end),
          counts: end.summary ? countsOf(end.summary) : null,
        });
      } catch (err) {
        log.warn({ err, exportId: id }, 'could not record the end of this export in the ledger');
      }
    },
  };
}
