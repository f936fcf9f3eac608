/**
 * `cxrec export --ids FILE --agent … --skill … --direction …`: which of the
 * recordings a window's listing returns an export takes. The APIs filter
 * only by date (and status), so the selection is applied to what the
 * listing returns: the dialect's source admits only selected recordings
 * to the ledger (`admit`, in the window's listings and in a re-check that
 * meets a recording indexed late). Rows outside the selection are never
 * written, so they are neither fetched nor counted; rows already in the
 * ledger (an earlier export's) are re-checked and finished as always.
 *
 * What each dialect's listing carries: recording-api search results have
 * `recordingId`, `contactId`, `agentId`, `skillName`, `direction`; platform
 * contacts have every leg's `contactId` under the `masterContactId`,
 * `agentId` and the agent's name, `skillId` and `skillName`, and
 * `isOutbound` (as the direction).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import { CxrecError } from '../errors.js';
import type { RecordingMeta } from '../state/ledger.js';

export const directions = ['inbound', 'outbound'] as const;
export type Direction = (typeof directions)[number];

export interface Selection {
  /** Exactly these recordings or contacts (`--ids FILE`). */
  ids?: { file: string; values: ReadonlySet<string> };
  /** Agent ids, or (platform) agent names, ignoring case. */
  agents?: readonly string[];
  /** Skill names ignoring case, or (platform) skill ids. */
  skills?: readonly string[];
  directions?: readonly Direction[];
}

/** True when nothing narrows the window. */
export function isWholeWindow(selection: Selection): boolean {
  return (
    selection.ids === undefined &&
    !selection.agents?.length &&
    !selection.skills?.length &&
    !selection.directions?.length
  );
}

/**
 * Reads an ids file: one recording or contact id per line; blank lines and
 * lines starting with `#` are ignored, surrounding spaces trimmed. A file
 * that cannot be read or holds no id is a usage error naming it.
 */
export async function readIdsFile(path: string): Promise<{ file: string; values: ReadonlySet<string> }> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CxrecError('usage', `--ids ${path}: cannot read the file (${code})`, { cause: err });
  }
  const values = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const id = line.trim();
    if (id !== '' && !id.startsWith('#')) values.add(id);
  }
  if (values.size === 0) {
    throw new CxrecError(
      'usage',
      `--ids ${path}: the file holds no id (one recording or contact id per line; # starts a comment)`,
    );
  }
  return { file, values };
}

/** The ids a row answers to: its own, its contact's, and (platform) every leg's. */
export function idsOf(meta: RecordingMeta): string[] {
  return [meta.recordingId, ...(meta.contactId ? [meta.contactId] : []), ...(meta.contactIds ?? [])];
}

const lower = (s: string | undefined): string | undefined => s?.toLowerCase();

/** Whether a recording, as listed, is in the selection (every given criterion must hold). */
export function selects(selection: Selection, meta: RecordingMeta): boolean {
  if (selection.ids && !idsOf(meta).some((id) => selection.ids?.values.has(id))) return false;
  if (selection.agents?.length) {
    const name = lower(meta.agentName);
    const ok = selection.agents.some(
      (a) => a === meta.agentId || (name !== undefined && a.toLowerCase() === name),
    );
    if (!ok) return false;
  }
  if (selection.skills?.length) {
    const name = lower(meta.skillName);
    const ok = selection.skills.some(
      (s) => s === meta.skillId || (name !== undefined && s.toLowerCase() === name),
    );
    if (!ok) return false;
  }
  if (selection.directions?.length) {
    const direction = lower(meta.direction);
    if (!selection.directions.some((d) => d === direction)) return false;
  }
  return true;
}

/** The selection as the ledger's `exports.selection` records it (JSON), or null for the whole window. */
export function describeSelection(selection: Selection): string | null {
  if (isWholeWindow(selection)) return null;
  return JSON.stringify({
    ...(selection.ids ? { ids: { file: selection.ids.file, count: selection.ids.values.size } } : {}),
    ...(selection.agents?.length ? { agent: selection.agents } : {}),
    ...(selection.skills?.length ? { skill: selection.skills } : {}),
    ...(selection.directions?.length ? { direction: selection.directions } : {}),
  });
}

/** The ids of the file that no row of `rows` answers to (not listed in the window). */
export function idsNotFound(selection: Selection, metas: Iterable<RecordingMeta>): string[] {
  if (!selection.ids) return [];
  const found = new Set<string>();
  for (const meta of metas) for (const id of idsOf(meta)) found.add(id);
  return [...selection.ids.values].filter((id) => !found.has(id));
}
