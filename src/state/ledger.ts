/**
 * The ledger: one row per recording and wanted channel, the single source of
 * truth for what was found, what is owed and what is done. SQLite for one
 * machine, PostgreSQL when several processes share the work; both pass the
 * same `ledgerSuite`.
 *
 * Jobs are claimed by lease: a claim sets `leaseOwner` and `leaseExpiresAt`,
 * so a job held by a process that died becomes claimable again once its
 * lease runs out. Every write that ends or defers a job names the owner, so
 * a process whose lease was taken over cannot overwrite the new holder.
 */
import type { Owner } from '../owners.js';

export const channels = ['combined', 'caller', 'agent'] as const;
export type Channel = (typeof channels)[number];

/** States a row can end in (see the CLI contract's "Final states in the ledger"). */
export const finalStates = [
  'stored',
  'purged',
  'media_unavailable',
  'failed_processing',
  'out_of_retention',
  'failed',
] as const;
export type FinalState = (typeof finalStates)[number];

const finalStateSet: ReadonlySet<string> = new Set(finalStates);

export function isFinalState(state: string): state is FinalState {
  return finalStateSet.has(state);
}

/**
 * Working states: `waiting` (the recording is not `Available` yet: re-checked
 * at `nextRunAt`), `pending` (ready to download at `nextRunAt`; also a retry
 * after a transient fault), `downloading` (claimed under a lease).
 */
export const workingStates = ['waiting', 'pending', 'downloading'] as const;
export type WorkingState = (typeof workingStates)[number];

export type JobState = FinalState | WorkingState;

/** The recording as search listed it; kept for the manifest, sidecars and re-checks. */
export interface RecordingMeta {
  recordingId: string;
  contactId?: string | undefined;
  /** The platform status last seen: Recording, Processing, Available, Failed. */
  status: string;
  /** ISO-8601 UTC, one-second resolution. */
  createdDate: string;
  durationSeconds?: number | undefined;
  direction?: string | undefined;
  agentId?: string | undefined;
  skillName?: string | undefined;
  /** Platform dialect: every leg's contactId of the master contact, in start order. */
  contactIds?: readonly string[] | undefined;
  /** Platform dialect: the caller's and the called number or address. */
  fromAddress?: string | undefined;
  toAddress?: string | undefined;
  skillId?: string | undefined;
  /** Platform dialect: the agent's first and last name. */
  agentName?: string | undefined;
}

export interface JobKey {
  recordingId: string;
  channel: Channel;
}

/** A newly discovered row; its state is decided by discovery. */
export interface DiscoveredJob extends JobKey {
  meta: RecordingMeta;
  state: 'waiting' | 'pending' | 'failed_processing' | 'out_of_retention' | 'media_unavailable';
  /** Why, for final states: e.g. `transcoding failed`, `older than 70 % of retention`. */
  reason?: string;
  /** When a waiting/pending row is next due (ms since epoch). */
  nextRunAt: number;
}

export interface StoredObjectInfo {
  key: string;
  sizeBytes: number;
  md5: string;
  sha256: string;
  contentType: string;
  /** ms since epoch. */
  storedAt: number;
}

export interface JobRow extends JobKey {
  state: JobState;
  reason: string | null;
  meta: RecordingMeta;
  attempts: number;
  /** ms since epoch. */
  nextRunAt: number;
  /** When the row first went `waiting` (ms since epoch), for the processing deadline. */
  firstSeenAt: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  lastErrorCode: string | null;
  lastErrorMessage: string | null;
  /** The object store's token for a staged, uncommitted upload (see `StagedUpload.resumeToken`). */
  uploadToken: string | null;
  /** Bytes staged so far when the upload was parked or the lease checkpointed. */
  uploadBytes: number | null;
  stored: StoredObjectInfo | null;
  updatedAt: number;
}

export interface ListFilter {
  states?: readonly JobState[];
  dueBefore?: number;
  /**
   * ISO-8601 instants, `from ≤ createdDate < to` (the window `export` was
   * given). Read through the createdDate index, so a window costs its own
   * rows, not the whole ledger's.
   */
  created?: { from: string; to: string };
  /** Only rows holding a staged upload's token (few at any time; read through their own index). */
  withUpload?: boolean;
  limit?: number;
}

/** Which rows `Ledger.countRows` counts: the same conditions as `list`. */
export type CountFilter = Pick<ListFilter, 'states' | 'created'>;

/** Rows per state, and per final state and reason, counted in the database. */
export type RowCounts = Pick<LedgerCounts, 'byState' | 'byReason'>;

export interface ClaimOptions {
  owner: string;
  limit: number;
  leaseMs: number;
  now: number;
}

export interface UpsertResult {
  /** Rows that did not exist before. */
  inserted: number;
  /** Existing working rows whose metadata or status was refreshed. */
  updated: number;
}

/** How `Ledger.finish` ends a leased row. */
export interface FinishOutcome {
  state: FinalState;
  /** One of a bounded set of words (no sizes, hosts, types or ids: those go in `detail`). */
  reason?: string;
  /** This row's specifics behind `reason` (sizes, host, content type); stored in `detail`. */
  detail?: string;
  stored?: StoredObjectInfo;
  errorCode?: string;
  errorMessage?: string;
}

/** A process working on the ledger (`processes` table), as `listOwners` reads it. */
export interface OwnerRow extends Owner {
  startedAt: number;
  /** Age of the last heartbeat in ms, on the ledger's clock. */
  heartbeatAgeMs: number;
}

/** How `Ledger.defer` puts a leased row back, and when it is due again. */
export interface Deferral {
  state: 'pending' | 'waiting';
  nextRunAt: number;
  countAttempt: boolean;
  errorCode?: string;
  errorMessage?: string;
  status?: string;
}

export interface LedgerCounts {
  /** Rows per state. */
  byState: Partial<Record<JobState, number>>;
  /** Rows per final state and reason: `{ failed: { 'download failed after 8 attempts': 2 } }`. */
  byReason: Partial<Record<FinalState, Record<string, number>>>;
  /** Rows not in a final state. */
  backlog: number;
  /** createdDate of the oldest row not in a final state. */
  oldestBacklogCreatedDate: string | null;
  lastError: {
    recordingId: string;
    channel: Channel;
    code: string;
    message: string;
    /** The row's `detail` (see `FinishOutcome.detail`), null when it has none. */
    detail: string | null;
    at: number;
  } | null;
  storedBytes: number;
}

/** Which settled rows `Ledger.retrySettled` puts back to work. */
export interface RetryFilter {
  /** A final state other than `stored` (stored rows are never fetched again). */
  state: Exclude<FinalState, 'stored'>;
  /** Only rows whose reason contains this text, ignoring case (absent: any reason). */
  reasonContains?: string;
  /** ISO-8601 instants, `from ≤ createdDate < to` (absent: every row). */
  created?: { from: string; to: string };
  /** Due time of the rows put back (ms since epoch). */
  now: number;
}

/** What `Ledger.startExport` records when an export begins. */
export interface ExportStart {
  /** ms since epoch. */
  startedAt: number;
  /** The window, ISO-8601. */
  since: string;
  until: string;
  /** JSON of the selection (ids file name and count, filters); null for the whole window. */
  selection: string | null;
  dialect: string;
}

/** What `Ledger.finishExport` records when it ends. */
export interface ExportEnd {
  /** ms since epoch. */
  endedAt: number;
  exitCode: number;
  /** The window's (selected) rows by state, plus `total` and `unsettled`. */
  counts: Record<string, number> | null;
}

/** One `cxrec export` as the ledger recorded it. */
export interface ExportRecord {
  id: number;
  /** ISO-8601. */
  startedAt: string;
  endedAt: string | null;
  since: string;
  until: string;
  selection: string | null;
  dialect: string;
  exitCode: number | null;
  counts: Record<string, number> | null;
}

export interface OverviewQuery {
  /** ms since epoch. */
  now: number;
  /** Rows stored and API grants made from this instant on are counted per minute. */
  since: number;
  /** For each age (ms), how many backlog rows were created more than that long before `now`. */
  backlogAgesMs: readonly number[];
  /** The most recently updated `failed` rows, at most this many. */
  failures: number;
}

export interface LedgerOverview {
  /** Aligned with `backlogAgesMs`. */
  backlogOlderThan: number[];
  /** Rows stored since `since`, by minute (`floor(storedAt / 60 000)`), minutes with none left out. */
  storedPerMinute: { minute: number; count: number }[];
  /**
   * The API budget's grants still in the ledger's grant log (SQLite
   * `rate_limit_log`, PostgreSQL `rate_limit_slots`), by minute. The log
   * keeps about one window, so older minutes read as none.
   */
  apiGrantsPerMinute: { minute: number; count: number }[];
  recentFailures: JobRow[];
}

export interface Ledger {
  /** Where it lives, for messages (a file path, or a postgres URL without password). */
  readonly location: string;

  /**
   * Inserts new rows and refreshes the metadata of existing working rows (a
   * row already final, or under a live lease, keeps its state). Batched in
   * one transaction: 100 000 rows take seconds.
   *
   * On an existing `waiting`/`pending` row discovery's verdict wins: its
   * state, reason and `nextRunAt` are taken, except that a row `pending`
   * before and after keeps its `nextRunAt` (a re-listing must not cut short
   * a retry backoff set by `defer`). A `downloading` row only has its
   * metadata refreshed, whether or not its lease is still live: `claim`
   * takes over an expired one. Final rows are not touched at all.
   * The same key twice in one call: the last one wins.
   */
  upsertDiscovered(jobs: readonly DiscoveredJob[]): Promise<UpsertResult>;

  /**
   * Leases up to `limit` due rows, oldest `nextRunAt` first: `pending` rows
   * whose `nextRunAt` has come, and `downloading` rows whose lease expired
   * (their holder died). Claimed rows become `downloading`.
   *
   * Taking over an expired lease counts an attempt (its holder died during
   * one), so a recording that kills its worker every time still runs out
   * of attempts instead of looping forever.
   */
  claim(options: ClaimOptions): Promise<JobRow[]>;
  /** Extends a held lease; false when the lease was lost. */
  renewLease(key: JobKey, owner: string, leaseMs: number, now: number): Promise<boolean>;

  /**
   * Ends a row in a final state, releasing the lease. False when `owner` no
   * longer holds it. `stored` clears the upload token (the upload was
   * committed); any other outcome keeps it, so a staged upload the worker
   * did not discard shows up in `listAbandonedUploads`.
   */
  finish(key: JobKey, owner: string, outcome: FinishOutcome): Promise<boolean>;
  /**
   * Defers a row: back to `pending` (transient fault, attempts + 1) or
   * `waiting` (not Available yet), due at `nextRunAt`, lease released.
   */
  defer(key: JobKey, owner: string, next: Deferral): Promise<boolean>;
  /** Records (or clears, with null) the staged upload of a leased row, before its first byte. */
  setUpload(key: JobKey, owner: string, upload: { token: string; bytes: number } | null): Promise<boolean>;

  /** Moves every `waiting` row of these recordings to `pending` now, status `Available` (they became Available). */
  markAvailable(recordingIds: readonly string[], now: number): Promise<number>;

  get(key: JobKey): Promise<JobRow | undefined>;
  /**
   * Rows in `states` (all when absent) due by `dueBefore` (any when absent),
   * of recordings created within `created` (any when absent), ordered by
   * createdDate.
   */
  list(filter: ListFilter): Promise<JobRow[]>;
  /**
   * The rows `list` would return (without its `limit`), in the same order,
   * read in keyset pages of a bounded size: memory stays flat however many
   * rows match (an export's window of 200 000 recordings).
   */
  iterate(filter: Omit<ListFilter, 'limit'>): AsyncIterable<JobRow>;
  /**
   * How many rows match, per state and per final state and reason, counted
   * by the database: no row is read into memory.
   */
  countRows(filter: CountFilter): Promise<RowCounts>;
  /** Every stored row, ordered by recordingId and channel (manifest, verify), in keyset pages. */
  listStored(): AsyncIterable<JobRow>;
  /** Rows holding an upload token whose lease is not live (leftovers to resume or discard). */
  listAbandonedUploads(now: number): Promise<JobRow[]>;
  /**
   * Forgets an abandoned upload after `ObjectStore.discardUpload` removed it:
   * clears the token if it is still `token` and no live lease holds the row
   * (no lease is needed, so leftovers on final rows can be cleaned too).
   * False when the row moved on meanwhile.
   */
  clearAbandonedUpload(key: JobKey, token: string, now: number): Promise<boolean>;

  counts(): Promise<LedgerCounts>;
  /** Read-only figures for the status page (`service/status-data.ts`); cheap on a 100 000-row ledger. */
  overview(query: OverviewQuery): Promise<LedgerOverview>;
  /**
   * Rows whose recording id, contact id or one of whose leg contact ids
   * (platform dialect) is exactly `id`, at most `limit`.
   */
  find(id: string, limit: number): Promise<JobRow[]>;

  /**
   * Takes the named lease (e.g. `discoverer`, so one process discovers at a
   * time) until `now + leaseMs`: when nobody holds it, when its holder's
   * lease expired (`expiresAt <= now`: the holder died or stalled), or when
   * `owner` holds it already (a renewal). False while another owner holds a
   * live one. Atomic across processes: of two owners racing for a free
   * name, exactly one gets true.
   *
   * `now` is the caller's clock, as for job leases: the clocks of the
   * processes sharing a ledger must agree to well within `leaseMs`, and the
   * holder should renew at a fraction of it (say a third).
   */
  acquireLease(name: string, owner: string, leaseMs: number, now: number): Promise<boolean>;
  /** Gives the named lease up if `owner` holds it, so another owner need not wait for it to expire; else nothing. */
  releaseLease(name: string, owner: string): Promise<void>;

  /**
   * Puts settled rows back to work (`cxrec retry`): rows in `filter.state`
   * (and matching its reason and window) become `pending`, due at
   * `filter.now`, with no reason, no lease and their attempts reset, so
   * the next `export`/`run` claims them. The last error and a staged
   * upload are kept (the upload is resumed). Returns how many rows moved.
   */
  retrySettled(filter: RetryFilter): Promise<number>;

  /** Records the start of an export; returns its id for `finishExport`. */
  startExport(start: ExportStart): Promise<number>;
  /** Records how export `id` ended; false when no such export exists. */
  finishExport(id: number, end: ExportEnd): Promise<boolean>;
  /** The latest `limit` exports, newest first. */
  listExports(limit: number): Promise<ExportRecord[]>;

  /**
   * Registers `owner` (first call) or refreshes its heartbeat, on the
   * ledger's clock: the database server's on PostgreSQL, this machine's on
   * SQLite (one machine). See `owners.ts`.
   */
  heartbeat(owner: Owner): Promise<void>;
  /** Every registered owner, with how old its last heartbeat is on the ledger's clock. */
  listOwners(): Promise<OwnerRow[]>;
  /** Forgets an owner: a clean exit, or one gone that holds nothing any more. */
  removeOwner(id: string): Promise<void>;

  /** Named discovery watermarks (ISO timestamps), e.g. `run` discovery progress. */
  getWatermark(name: string): Promise<string | undefined>;
  setWatermark(name: string, value: string): Promise<void>;

  close(): Promise<void>;
}
