/**
 * The `jobs` table's columns, shared by the SQLite and PostgreSQL ledgers:
 * one column per field (no JSON blob) so an operator can read the ledger
 * with plain SQL, and the conversions between a row and a `JobRow`.
 */
import { CxrecError } from '../errors.js';
import {
  channels,
  finalStates,
  isFinalState,
  workingStates,
  type Channel,
  type DiscoveredJob,
  type JobRow,
  type LedgerCounts,
  type JobState,
  type RecordingMeta,
} from './ledger.js';

/** The columns of a recording's metadata (`RecordingMeta`), which discovery writes and refreshes. */
interface RecordingColumns {
  contact_id: string | null;
  status: string;
  created_date: string;
  duration_seconds: number | null;
  direction: string | null;
  agent_id: string | null;
  skill_name: string | null;
  contact_ids: string | null;
  from_address: string | null;
  to_address: string | null;
  skill_id: string | null;
  agent_name: string | null;
}

/** A `jobs` row as both drivers return it (PostgreSQL BIGINTs are parsed to numbers). */
export interface JobRecord extends RecordingColumns {
  recording_id: string;
  channel: string;
  state: string;
  reason: string | null;
  /** Migration 010: the row's specifics behind a bounded `reason`. */
  detail?: string | null;
  attempts: number;
  next_run_at: number;
  first_seen_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: number | null;
  upload_token: string | null;
  upload_bytes: number | null;
  stored_key: string | null;
  stored_size_bytes: number | null;
  stored_md5: string | null;
  stored_sha256: string | null;
  stored_content_type: string | null;
  stored_at: number | null;
  updated_at: number;
}

/** The column values a discovered job inserts (or refreshes). */
export interface DiscoveredRecord extends RecordingColumns {
  recording_id: string;
  channel: Channel;
  state: DiscoveredJob['state'];
  reason: string | null;
  next_run_at: number;
  /** Wall clock: when this process first saw the row (kept on refresh). */
  first_seen_at: number;
  updated_at: number;
}

const allStates: readonly string[] = [...workingStates, ...finalStates];

function isJobState(value: string): value is JobState {
  return allStates.includes(value);
}

function isChannel(value: string): value is Channel {
  return (channels as readonly string[]).includes(value);
}

/**
 * Several discoveries of one key in one batch: the last wins. PostgreSQL
 * refuses to touch a row twice in one INSERT ... ON CONFLICT, and both
 * backends must count `inserted`/`updated` the same way.
 */
export function lastPerKey(jobs: readonly DiscoveredJob[]): DiscoveredJob[] {
  const byKey = new Map<string, DiscoveredJob>();
  for (const job of jobs) {
    const k = `${job.channel}\u0000${job.recordingId}`;
    byKey.delete(k); // re-insert so the batch keeps the order of last appearance
    byKey.set(k, job);
  }
  return [...byKey.values()];
}

export function toDiscoveredRecord(job: DiscoveredJob, wallNow: number): DiscoveredRecord {
  const m = job.meta;
  return {
    recording_id: job.recordingId,
    channel: job.channel,
    state: job.state,
    reason: job.reason ?? null,
    contact_id: m.contactId ?? null,
    status: m.status,
    created_date: m.createdDate,
    duration_seconds: m.durationSeconds ?? null,
    direction: m.direction ?? null,
    agent_id: m.agentId ?? null,
    skill_name: m.skillName ?? null,
    contact_ids: m.contactIds === undefined ? null : m.contactIds.join(','),
    from_address: m.fromAddress ?? null,
    to_address: m.toAddress ?? null,
    skill_id: m.skillId ?? null,
    agent_name: m.agentName ?? null,
    next_run_at: job.nextRunAt,
    first_seen_at: wallNow,
    updated_at: wallNow,
  };
}

export function toJobRow(r: JobRecord): JobRow {
  if (!isJobState(r.state) || !isChannel(r.channel)) {
    throw new CxrecError('ledger', 'the ledger holds a row this version of cxrec does not understand', {
      context: { recordingId: r.recording_id, channel: r.channel, state: r.state },
    });
  }
  // Optional metadata is left out rather than set to undefined, so a row
  // reads back exactly as it was discovered.
  const meta: RecordingMeta = { recordingId: r.recording_id, status: r.status, createdDate: r.created_date };
  if (r.contact_id !== null) meta.contactId = r.contact_id;
  if (r.duration_seconds !== null) meta.durationSeconds = r.duration_seconds;
  if (r.direction !== null) meta.direction = r.direction;
  if (r.agent_id !== null) meta.agentId = r.agent_id;
  if (r.skill_name !== null) meta.skillName = r.skill_name;
  if (r.contact_ids !== null) meta.contactIds = r.contact_ids === '' ? [] : r.contact_ids.split(',');
  if (r.from_address !== null) meta.fromAddress = r.from_address;
  if (r.to_address !== null) meta.toAddress = r.to_address;
  if (r.skill_id !== null) meta.skillId = r.skill_id;
  if (r.agent_name !== null) meta.agentName = r.agent_name;

  const stored =
    r.state === 'stored' &&
    r.stored_key !== null &&
    r.stored_size_bytes !== null &&
    r.stored_md5 !== null &&
    r.stored_sha256 !== null &&
    r.stored_content_type !== null &&
    r.stored_at !== null
      ? {
          key: r.stored_key,
          sizeBytes: r.stored_size_bytes,
          md5: r.stored_md5,
          sha256: r.stored_sha256,
          contentType: r.stored_content_type,
          storedAt: r.stored_at,
        }
      : null;

  return {
    recordingId: r.recording_id,
    channel: r.channel,
    state: r.state,
    reason: r.reason,
    meta,
    attempts: r.attempts,
    nextRunAt: r.next_run_at,
    firstSeenAt: r.first_seen_at,
    leaseOwner: r.lease_owner,
    leaseExpiresAt: r.lease_expires_at,
    lastErrorCode: r.last_error_code,
    lastErrorMessage: r.last_error_message,
    uploadToken: r.upload_token,
    uploadBytes: r.upload_bytes,
    stored,
    updatedAt: r.updated_at,
  };
}

/** An error given to `finish`/`defer`: either field alone still records an error. */
export function errorColumns(
  code: string | undefined,
  message: string | undefined,
): { error_code: string | null; error_message: string | null } {
  if (code === undefined && message === undefined) return { error_code: null, error_message: null };
  return { error_code: code ?? 'unknown', error_message: message ?? '' };
}

/** Shapes the aggregates both backends compute into `LedgerCounts`. */
export function buildCounts(parts: {
  groups: readonly { state: string; reason: string | null; n: number }[];
  backlog: number;
  oldestBacklogCreatedDate: string | null;
  lastError: JobRecord | undefined;
  storedBytes: number;
}): LedgerCounts {
  const counts: LedgerCounts = {
    byState: {},
    byReason: {},
    backlog: parts.backlog,
    oldestBacklogCreatedDate: parts.oldestBacklogCreatedDate,
    lastError: null,
    storedBytes: parts.storedBytes,
  };
  for (const { state, reason, n } of parts.groups) {
    if (!isJobState(state)) continue; // toJobRow reports unknown states when such a row is read
    counts.byState[state] = (counts.byState[state] ?? 0) + n;
    // Rows with no reason (e.g. stored) are counted by state only.
    if (reason !== null && isFinalState(state)) {
      const reasons = (counts.byReason[state] ??= {});
      reasons[reason] = (reasons[reason] ?? 0) + n;
    }
  }
  const e = parts.lastError;
  if (e?.last_error_at != null) {
    const row = toJobRow(e);
    counts.lastError = {
      recordingId: row.recordingId,
      channel: row.channel,
      code: row.lastErrorCode ?? 'unknown',
      message: row.lastErrorMessage ?? '',
      detail: e.detail ?? null,
      at: e.last_error_at,
    };
  }
  return counts;
}

/**
 * Key order as both databases sort it (SQLite BINARY, PostgreSQL "C"):
 * byte-wise UTF-8, which is not JavaScript's UTF-16 `<` beyond the BMP.
 */
export function compareKey(
  a: { recording_id: string; channel: string },
  b: { recording_id: string; channel: string },
): number {
  return (
    Buffer.compare(Buffer.from(a.recording_id), Buffer.from(b.recording_id)) ||
    Buffer.compare(Buffer.from(a.channel), Buffer.from(b.channel))
  );
}

/**
 * The `created_date` text bounds of a `Ledger.list` window. createdDate is
 * stored as CXone sent it: ISO-8601 UTC of one-second resolution (contract
 * §2), so text order is time order. Each bound is taken up to the next whole
 * second and cut to `YYYY-MM-DDTHH:MM:SS`: a stored value of that second or
 * later sorts at or after it whatever suffix it has (`Z`, `.000Z`), one of
 * an earlier second before it. So `bound ≤ created_date` is
 * `createdDate ≥ instant`, exactly, and the index on created_date serves it.
 */
export function createdDateBounds(window: { from: string; to: string }): { from: string; to: string } {
  const bound = (iso: string): string => {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) throw new RangeError(`not an ISO-8601 instant: ${JSON.stringify(iso)}`);
    return new Date(Math.ceil(ms / 1000) * 1000).toISOString().slice(0, 19);
  };
  return { from: bound(window.from), to: bound(window.to) };
}
