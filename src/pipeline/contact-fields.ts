/**
 * The contact fields the platform dialect keeps per master contact
 * (cxone-platform-api.md section 3), as sidecars and the manifest show
 * them. Rows of the recording-api dialect have none, so their sidecars and
 * manifest lines stay exactly as they were.
 */
import type { RecordingMeta } from '../state/ledger.js';

export interface ContactFields {
  /** Every leg's contactId, in start order. */
  contactIds: readonly string[];
  startedAt: string;
  durationSeconds: number | null;
  direction: string | null;
  fromAddress: string | null;
  toAddress: string | null;
  agentId: string | null;
  agentName: string | null;
  skillId: string | null;
  skillName: string | null;
}

/** The manifest's extra CSV columns for the platform dialect, in order. */
export const contactColumns = [
  'contactIds',
  'startedAt',
  'durationSeconds',
  'direction',
  'fromAddress',
  'toAddress',
  'agentId',
  'agentName',
  'skillId',
  'skillName',
] as const satisfies readonly (keyof ContactFields)[];

/** The contact fields of a platform row; `undefined` for a recording-api row. */
export function contactFields(meta: RecordingMeta): ContactFields | undefined {
  if (meta.contactIds === undefined) return undefined;
  return {
    contactIds: meta.contactIds,
    startedAt: meta.createdDate,
    durationSeconds: meta.durationSeconds ?? null,
    direction: meta.direction ?? null,
    fromAddress: meta.fromAddress ?? null,
    toAddress: meta.toAddress ?? null,
    agentId: meta.agentId ?? null,
    agentName: meta.agentName ?? null,
    skillId: meta.skillId ?? null,
    skillName: meta.skillName ?? null,
  };
}
