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
  type ExportRecord,
  type JobRow,
  type JobState,
  type LedgerCounts,
  type ListFilter,
  type OwnerRow,
  type RecordingMeta,
  type RowCounts,
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

/** One row of `SELECT state, reason, COUNT(*) … GROUP BY state, reason`. */
export interface StateGroup {
  state: string;
  reason: string | null;
  n: number;
  /** SUM(stored_size_bytes) of the group, when asked for. */
  bytes?: number | null;
}

/** Shapes `GROUP BY state, reason` rows into counts per state and per final state and reason. */
export function groupCounts(groups: readonly StateGroup[]): RowCounts {
  const counts: RowCounts = { byState: {}, byReason: {} };
  for (const { state, reason, n } of groups) {
    if (!isJobState(state)) continue; // toJobRow reports unknown states when such a row is read
    counts.byState[state] = (counts.byState[state] ?? 0) + n;
    // Rows with no reason (e.g. stored) are counted by state only.
    if (reason !== null && isFinalState(state)) {
      const reasons = (counts.byReason[state] ??= {});
      reasons[reason] = (reasons[reason] ?? 0) + n;
    }
  }
  return counts;
}

/**
 * Shapes the aggregates both backends compute into `LedgerCounts`: the
 * groups carry the stored bytes; the backlog is the working states' rows.
 */
export function buildCounts(parts: {
  groups: readonly StateGroup[];
  oldestBacklogCreatedDate: string | null;
  lastError: JobRecord | undefined;
}): LedgerCounts {
  const { byState, byReason } = groupCounts(parts.groups);
  const counts: LedgerCounts = {
    byState,
    byReason,
    backlog: workingStates.reduce((sum, state) => sum + (byState[state] ?? 0), 0),
    oldestBacklogCreatedDate: parts.oldestBacklogCreatedDate,
    lastError: null,
    storedBytes: parts.groups.filter((g) => g.state === 'stored').reduce((sum, g) => sum + (g.bytes ?? 0), 0),
  };
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
/** An instant (ms) as the createdDate text it compares with (whole seconds, rounded up, as `createdDateBounds`). */
export function createdDateBound(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().slice(0, 19);
}

export function createdDateBounds(window: { from: string; to: string }): { from: string; to: string } {
  const bound = (iso: string): string => {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) throw new RangeError(`not an ISO-8601 instant: ${JSON.stringify(iso)}`);
    return new Date(Math.ceil(ms / 1000) * 1000).toISOString().slice(0, 19);
  };
  return { from: bound(window.from), to: bound(window.to) };
}

/** Final states `retrySettled` may put back to work: every one but `stored` (nothing is fetched twice). */
export function assertRetryableState(state: string): void {
  if (state === 'stored' || !isFinalState(state)) {
    throw new CxrecError(
      'usage',
      `cannot retry rows in state ${JSON.stringify(state)}; retry takes one of ${finalStates
        .filter((s) => s !== 'stored')
        .join(', ')}`,
    );
  }
}

/** An `exports` row as both drivers return it. */
export interface ExportRow {
  id: number;
  started_at: number;
  ended_at: number | null;
  since: string;
  until: string;
  selection: string | null;
  dialect: string;
  exit_code: number | null;
  counts: string | null;
}

export function toExportRecord(r: ExportRow): ExportRecord {
  let counts: Record<string, number> | null = null;
  if (r.counts !== null) {
    try {
      counts = JSON.parse(r.counts) as Record<string, number>;
    } catch {
      counts = null;
    }
  }
  return {
    id: r.id,
    startedAt: new Date(r.started_at).toISOString(),
    endedAt: r.ended_at === null ? null : new Date(r.ended_at).toISOString(),
    since: r.since,
    until: r.until,
    selection: r.selection,
    dialect: r.dialect,
    exitCode: r.exit_code,
    counts,
  };
}

/** A keyset position in `list` order: the last row of the page before. */
export interface ListPosition {
  created_date: string;
  recording_id: string;
  channel: string;
}

/** Rows per keyset page of `Ledger.iterate`. */
export const iteratePageSize = 1000;

/**
 * The WHERE conditions of a `list`/`iterate`/`countRows` filter, as SQL
 * with placeholders made by `param` (`@name` for SQLite, `$n` for
 * PostgreSQL) and the values they stand for. Only the conditions the filter
 * has are written, so the planner sees plain range conditions it can serve
 * from an index (a `(@x IS NULL OR …)` form cannot be, in SQLite).
 */
export function listConditions(
  filter: Omit<ListFilter, 'limit'>,
  param: (value: unknown) => string,
  after?: ListPosition,
): string[] {
  const where: string[] = [];
  if (filter.states) {
    for (const s of filter.states) {
      if (!isJobState(s)) throw new CxrecError('ledger', `not a ledger state: ${JSON.stringify(s)}`);
    }
    where.push(`state IN (${filter.states.map((s) => param(s)).join(', ')})`);
  }
  if (filter.dueBefore !== undefined) where.push(`next_run_at <= ${param(filter.dueBefore)}`);
  // One lower bound on created_date, the higher of the window's and the
  // page's (text order is the databases' order: ASCII, byte-wise), so the
  // index range starts at the page, not at the window's start.
  const window = filter.created ? createdDateBounds(filter.created) : undefined;
  const lower = [window?.from, after?.created_date]
    .filter((v) => v !== undefined)
    .reduce<string | undefined>((a, b) => (a === undefined || b > a ? b : a), undefined);
  if (lower !== undefined) where.push(`created_date >= ${param(lower)}`);
  if (window) where.push(`created_date < ${param(window.to)}`);
  if (filter.withUpload === true) where.push('upload_token IS NOT NULL');
  if (after) {
    where.push(
      `(created_date, recording_id, channel) > (${param(after.created_date)}, ${param(after.recording_id)}, ${param(after.channel)})`,
    );
  }
  return where;
}

/** A `processes` row as both backends read it (times in ms since the epoch). */
export interface ProcessRecord {
  owner_id: string;
  host: string;
  pid: number;
  kernel: string | null;
  started_at: number;
  heartbeat_at: number;
}

/** A `processes` row with its heartbeat's age against `ledgerNow`, the ledger's clock. */
export function toOwnerRow(r: ProcessRecord, ledgerNow: number): OwnerRow {
  return {
    id: r.owner_id,
    host: r.host,
    pid: r.pid,
    kernel: r.kernel,
    startedAt: r.started_at,
    heartbeatAgeMs: ledgerNow - r.heartbeat_at,
  };
}
