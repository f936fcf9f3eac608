/**
 * Metadata sidecars (`CXREC_SIDECARS=true`): one JSON object per recording
 * under `metadata/`, holding what search said of the recording and what
 * became of each channel. Written once every channel of the recording is
 * settled, so the file never shows a half-finished picture; rewritten only
 * when its content changed, so a re-run stores nothing new. It lies beside
 * the recording's objects (`metadata/` with the folder and key part of the
 * first stored channel's object), so it follows the layout the objects were
 * stored under, not today's CXREC_LAYOUT.
 */
import { createHash } from 'node:crypto';

import { isFinalState, type JobRow } from '../state/ledger.js';
import { sidecarKeyBeside, sidecarObjectKey, type KeyOptions } from '../storage/keys.js';
import type { ObjectStore } from '../storage/object-store.js';
import { contactFields } from './contact-fields.js';

export function sidecarBody(rows: readonly JobRow[]): Buffer {
  const first = rows[0];
  if (!first) throw new RangeError('a sidecar needs at least one row');
  const meta = first.meta;
  const contact = contactFields(meta);
  const body = {
    recordingId: meta.recordingId,
    contactId: meta.contactId ?? null,
    createdDate: meta.createdDate,
    durationSeconds: meta.durationSeconds ?? null,
    direction: meta.direction ?? null,
    agentId: meta.agentId ?? null,
    skillName: meta.skillName ?? null,
    status: meta.status,
    // Platform dialect only: every leg and the call's parties, as listed.
    ...(contact === undefined ? {} : { contact }),
    channels: [...rows]
      .sort((a, b) => a.channel.localeCompare(b.channel))
      .map((r) => ({
        channel: r.channel,
        state: r.state,
        reason: r.reason,
        ...(r.stored
          ? {
              key: r.stored.key,
              sizeBytes: r.stored.sizeBytes,
              md5: r.stored.md5,
              sha256: r.stored.sha256,
              contentType: r.stored.contentType,
              storedAt: new Date(r.stored.storedAt).toISOString(),
            }
          : {}),
      })),
  };
  return Buffer.from(`${JSON.stringify(body, null, 2)}\n`);
}

/**
 * Writes the sidecar of every settled recording among `rows` that has a
 * stored channel. Returns how many were written. The rows of one recording
 * must come one after another (as `Ledger.iterate` yields them: by
 * createdDate, then id); only one recording's rows are held at a time, so a
 * window of any size streams through.
 */
export async function writeSidecars(
  store: ObjectStore,
  rows: Iterable<JobRow> | AsyncIterable<JobRow>,
  signal: AbortSignal,
): Promise<number> {
  let written = 0;
  let group: JobRow[] = [];
  for await (const row of rows) {
    if (group.length > 0 && group[0]?.recordingId !== row.recordingId) {
      if (await writeSidecar(store, group, signal)) written++;
      group = [];
    }
    group.push(row);
  }
  if (group.length > 0 && (await writeSidecar(store, group, signal))) written++;
  return written;
}

/** Beside the recording's first stored object (by channel name), as `sidecarKeyBeside` maps it. */
export function sidecarKey(recordingId: string, rows: readonly JobRow[], options: KeyOptions = {}): string {
  const first = [...rows]
    .filter((r) => r.stored)
    .sort((a, b) => a.channel.localeCompare(b.channel))
    .at(0)?.stored;
  return (first && sidecarKeyBeside(first.key)) ?? sidecarObjectKey(recordingId, '', options);
}

/** One recording's sidecar, if all its rows are settled and one is stored and the content changed; true when written. */
async function writeSidecar(
  store: ObjectStore,
  recRows: readonly JobRow[],
  signal: AbortSignal,
): Promise<boolean> {
  signal.throwIfAborted();
  if (!recRows.every((r) => isFinalState(r.state)) || !recRows.some((r) => r.stored)) return false;
  const body = sidecarBody(recRows);
  const key = sidecarKey(recRows[0]?.recordingId ?? '', recRows, { foldsCase: store.foldsCase });
  const existing = await store.head(key, { signal });
  const md5 = createHash('md5').update(body).digest('hex');
  if (existing && existing.sizeBytes === body.length && (existing.md5 === undefined || existing.md5 === md5))
    return false;
  await store.putSmall(key, body, { contentType: 'application/json', signal });
  return true;
}
