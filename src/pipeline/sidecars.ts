/**
 * Metadata sidecars (`CXREC_SIDECARS=true`): one JSON object per recording
 * under `metadata/`, holding what search said of the recording and what
 * became of each channel. Written once every channel of the recording is
 * settled, so the file never shows a half-finished picture; rewritten only
 * when its content changed, so a re-run stores nothing new.
 */
import { createHash } from 'node:crypto';

import { isFinalState, type JobRow } from '../state/ledger.js';
import { sidecarObjectKey } from '../storage/keys.js';
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

/** Writes the sidecar of every settled recording among `rows` that has a stored channel. Returns how many were written. */
export async function writeSidecars(
  store: ObjectStore,
  rows: readonly JobRow[],
  signal: AbortSignal,
): Promise<number> {
  const byRecording = new Map<string, JobRow[]>();
  for (const row of rows)
    byRecording.set(row.recordingId, [...(byRecording.get(row.recordingId) ?? []), row]);
  let written = 0;
  for (const [recordingId, recRows] of byRecording) {
    signal.throwIfAborted();
    if (!recRows.every((r) => isFinalState(r.state)) || !recRows.some((r) => r.stored)) continue;
    const body = sidecarBody(recRows);
    const key = sidecarObjectKey(recordingId, { foldsCase: store.foldsCase });
    const existing = await store.head(key, { signal });
    const md5 = createHash('md5').update(body).digest('hex');
    if (
      existing &&
      existing.sizeBytes === body.length &&
      (existing.md5 === undefined || existing.md5 === md5)
    )
      continue;
    await store.putSmall(key, body, { contentType: 'application/json', signal });
    written++;
  }
  return written;
}
