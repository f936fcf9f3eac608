/**
 * The platform dialect's domain rules (cxone-platform-api.md sections 3-4):
 * which ledger rows the listed contacts become, when a master contact's
 * media is first asked for, and what a "not found" from media playback
 * means at a given moment. Pure functions, so the policy is tested without
 * a tenant.
 *
 * One row per `masterContactId`, however many legs are listed; the row
 * keeps every leg's `contactId`. Media playback says nothing but "not
 * found" while a call is processing, when it has no recording and once it
 * was purged, and every ask costs one of 150 playback calls per 5 minutes,
 * so the first ask waits until the call ended plus an allowance for
 * processing, and re-asks back off (each wait about as long as the call has
 * been over) until the processing deadline settles the row.
 */
import type { DiscoveredJob, FinalState, RecordingMeta } from '../state/ledger.js';

const DAY_MS = 86_400_000;

/** A completed contact as the platform client lists it (the fields this module reads). */
export interface ListedContact {
  contactId: string;
  masterContactId: string;
  /** ISO-8601 UTC. */
  contactStartDate: string;
  totalDurationSeconds?: number | undefined;
  abandoned?: boolean | undefined;
  isOutbound?: boolean | undefined;
  agentId?: string | undefined;
  firstName?: string | undefined;
  lastName?: string | undefined;
  skillId?: string | undefined;
  skillName?: string | undefined;
  fromAddress?: string | undefined;
  toAddress?: string | undefined;
}

/** Every leg of one call, as listed, in start order. */
export interface MasterContact {
  masterContactId: string;
  legs: ListedContact[];
  /** ms since epoch: the first leg's start. */
  startMs: number;
  /** ms since epoch: the latest leg's `contactStartDate + totalDurationSeconds`. */
  endMs: number;
}

export interface PlatformPolicy {
  retentionDays: number;
  /** CXREC_POLL_SECONDS: the processing allowance after a call ends, and the first re-ask wait. */
  pollSeconds: number;
  maxProcessingMinutes: number;
}

/** Groups listed legs by master contact (legs of one master may come on different pages of one listing). */
export function groupByMaster(contacts: Iterable<ListedContact>): MasterContact[] {
  const byMaster = new Map<string, ListedContact[]>();
  for (const c of contacts) {
    const legs = byMaster.get(c.masterContactId);
    if (legs === undefined) byMaster.set(c.masterContactId, [c]);
    else if (!legs.some((l) => l.contactId === c.contactId)) legs.push(c);
  }
  return [...byMaster].map(([masterContactId, legs]) => {
    legs.sort(
      (a, b) =>
        Date.parse(a.contactStartDate) - Date.parse(b.contactStartDate) ||
        a.contactId.localeCompare(b.contactId),
    );
    const startMs = Math.min(...legs.map((l) => Date.parse(l.contactStartDate)));
    const endMs = Math.max(
      ...legs.map((l) => Date.parse(l.contactStartDate) + (l.totalDurationSeconds ?? 0) * 1000),
    );
    return { masterContactId, legs, startMs, endMs };
  });
}

/** ISO-8601 at one-second resolution, as the ledger orders createdDate. */
function isoSeconds(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

/** The ledger's view of a master contact: its row key is the `masterContactId`. */
export function masterMeta(master: MasterContact): RecordingMeta {
  const first = master.legs[0];
  // The answering agent and skill are the first leg's that names one.
  const agentLeg = master.legs.find((l) => l.agentId !== undefined && l.agentId !== '0') ?? first;
  const skillLeg = master.legs.find((l) => l.skillId !== undefined || l.skillName !== undefined) ?? first;
  const name = [agentLeg?.firstName, agentLeg?.lastName].filter((p) => p !== undefined && p !== '').join(' ');
  const meta: RecordingMeta = {
    recordingId: master.masterContactId,
    contactId: master.masterContactId,
    status: 'Completed',
    createdDate: isoSeconds(master.startMs),
    durationSeconds: Math.max(0, (master.endMs - master.startMs) / 1000),
    contactIds: master.legs.map((l) => l.contactId),
  };
  if (first?.isOutbound !== undefined) meta.direction = first.isOutbound ? 'Outbound' : 'Inbound';
  if (agentLeg?.agentId !== undefined) meta.agentId = agentLeg.agentId;
  if (name !== '') meta.agentName = name;
  if (skillLeg?.skillId !== undefined) meta.skillId = skillLeg.skillId;
  if (skillLeg?.skillName !== undefined) meta.skillName = skillLeg.skillName;
  if (first?.fromAddress !== undefined) meta.fromAddress = first.fromAddress;
  if (first?.toAddress !== undefined) meta.toAddress = first.toAddress;
  return meta;
}

/** When the call a row stands for ended (ms since epoch), from what discovery recorded. */
export function callEndMs(meta: Pick<RecordingMeta, 'createdDate' | 'durationSeconds'>): number {
  return Date.parse(meta.createdDate) + (meta.durationSeconds ?? 0) * 1000;
}

/** The row a listed master contact becomes. */
export function masterJob(policy: PlatformPolicy, master: MasterContact, now: number): DiscoveredJob {
  const meta = masterMeta(master);
  const base = { recordingId: master.masterContactId, channel: 'combined' as const, meta };
  if (master.startMs < now - 0.7 * policy.retentionDays * DAY_MS) {
    return {
      ...base,
      state: 'out_of_retention',
      reason: `older than 70 % of the ${policy.retentionDays}-day retention`,
      nextRunAt: now,
    };
  }
  // The contract: abandoned calls never get a recording. Asking would cost
  // a playback call per re-check until the processing deadline.
  if (master.legs.every((l) => l.abandoned === true)) {
    return { ...base, state: 'media_unavailable', reason: 'abandoned call: no recording', nextRunAt: now };
  }
  return { ...base, state: 'pending', nextRunAt: Math.max(now, master.endMs + policy.pollSeconds * 1000) };
}

export type NotFoundVerdict =
  { kind: 'settle'; state: FinalState; reason: string } | { kind: 'ask_again'; at: number };

/**
 * Media playback answered 404 at `now`: purged past the retention, no
 * recording past the processing deadline, else ask again later. The waits
 * grow with the time since the call ended (so an unrecorded call costs
 * about log2(deadline / allowance) asks, ten with the defaults), and the
 * last ask falls on the deadline itself.
 */
export function afterNotFound(
  policy: PlatformPolicy,
  meta: Pick<RecordingMeta, 'createdDate' | 'durationSeconds'>,
  now: number,
): NotFoundVerdict {
  const start = Date.parse(meta.createdDate);
  const end = callEndMs(meta);
  if (start < now - policy.retentionDays * DAY_MS) {
    return {
      kind: 'settle',
      state: 'purged',
      reason: `media gone: older than the ${policy.retentionDays}-day retention`,
    };
  }
  const deadline = end + policy.maxProcessingMinutes * 60_000;
  if (now >= deadline) {
    return {
      kind: 'settle',
      state: 'media_unavailable',
      reason: `no recording: media playback still found none ${policy.maxProcessingMinutes} minutes after the call ended`,
    };
  }
  const wait = Math.max(policy.pollSeconds * 1000, now - end);
  return { kind: 'ask_again', at: Math.min(now + wait, deadline) };
}

/**
 * A call with several voice interactions is stored as one object each:
 * the first under the master's own row, the k-th under `{master}-k`
 * (cxone-platform-api.md section 4). Returns the row ids in interaction order.
 */
export function interactionRowIds(masterContactId: string, interactions: number): string[] {
  return Array.from({ length: interactions }, (_, i) =>
    i === 0 ? masterContactId : `${masterContactId}-${i + 1}`,
  );
}

/** Which interaction (0-based) a row stands for: its `-k` suffix over the master id in `meta.contactId`. */
export function interactionIndex(recordingId: string, masterContactId: string): number {
  if (recordingId === masterContactId) return 0;
  const suffix = recordingId.startsWith(`${masterContactId}-`)
    ? Number(recordingId.slice(masterContactId.length + 1))
    : NaN;
  return Number.isInteger(suffix) && suffix >= 2 ? suffix - 1 : 0;
}
