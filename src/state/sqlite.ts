/* better-sqlite3 is synchronous; these functions are async only so that a
   failure is a rejected promise, as the Ledger interface promises, never a
   synchronous throw. */
/* eslint-disable @typescript-eslint/require-await */
/**
 * The ledger in one SQLite file (better-sqlite3), for one machine.
 *
 * WAL lets `status` read while a worker writes; every write that reads
 * before it writes (upsert, claim, migrations) runs under BEGIN IMMEDIATE,
 * so two processes pointed at the same file stay correct: the second waits
 * up to `busy_timeout` for the write lock instead of failing on upgrade.
 * better-sqlite3 is synchronous; the methods are async because the
 * interface is, and a 100 000-row upsert blocks the event loop for about
 * a second (see bench/ledger.bench.ts), which discovery can afford.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setImmediate } from 'node:timers/promises';

import Database from 'better-sqlite3';

import { CxrecError } from '../errors.js';
import {
  assertRetryableState,
  buildCounts,
  compareKey,
  createdDateBound,
  createdDateBounds,
  errorColumns,
  groupCounts,
  iteratePageSize,
  lastPerKey,
  listConditions,
  toDiscoveredRecord,
  toExportRecord,
  toJobRow,
  toOwnerRow,
  type DiscoveredRecord,
  type ExportRow,
  type JobRecord,
  type ListPosition,
  type StateGroup,
  type ProcessRecord,
} from './job-record.js';
import { isFinalState } from './ledger.js';
import type {
  ClaimOptions,
  CountFilter,
  Deferral,
  DiscoveredJob,
  ExportEnd,
  ExportRecord,
  ExportStart,
  FinishOutcome,
  JobKey,
  JobRow,
  Ledger,
  LedgerCounts,
  LedgerOverview,
  ListFilter,
  RetryFilter,
  OverviewQuery,
  RowCounts,
  OwnerRow,
  UpsertResult,
} from './ledger.js';
import type { Owner } from '../owners.js';
import { readMigrations } from './migration-files.js';
import { scrubText } from '../redact.js';

/** How long a write waits for another process's write lock before failing. */
const busyTimeoutMs = 10_000;
/** Rows per page of `listStored`: the iterator must not hold a statement open across awaits. */
const storedPageSize = 1000;

type Db = Database.Database;

/** The row is leased by `@owner`: every write of a worker names its owner. */
const leaseHeld = `recording_id = @recording_id AND channel = @channel
               AND state = 'downloading' AND lease_owner = @owner`;

/**
 * The SET clauses of a worker handing its lease back: the newest error is
 * kept (none given leaves the last one recorded).
 */
const releaseLease = `lease_owner = NULL,
               lease_expires_at = NULL,
               last_error_code    = COALESCE(@error_code, last_error_code),
               last_error_message = COALESCE(@error_message, last_error_message),
               last_error_at      = CASE WHEN @error_code IS NULL THEN last_error_at ELSE @wall END,
               updated_at = @wall`;

/** Opens (creating if missing) the ledger file at `path`, or `:memory:`, and brings its schema up to date. */
export async function openSqliteLedger(path: string): Promise<SqliteLedger> {
  const { db, location } = openSqliteDatabase(path);
  return new SqliteLedger(db, location);
}

/**
 * Opens a connection to the ledger file at `path` (creating it and its
 * folder if missing) with the ledger's pragmas, and applies the ledger's
 * migrations. Exported for the rate-limit log (`sqlite-rate-log.ts`),
 * which shares the file: the CLI may open the limiter before the ledger,
 * and migrating is idempotent under one write lock, so whichever opens
 * first brings the schema up to date and the ledger stays its only owner.
 */
export function openSqliteDatabase(path: string): { db: Db; location: string } {
  const location = path === ':memory:' ? path : resolve(path);
  if (location !== ':memory:') {
    const dir = dirname(location);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new CxrecError(
        'ledger',
        `cannot create the folder ${dir} for the ledger ${location}; set CXREC_STATE to a file in a writable folder`,
        { cause: err },
      );
    }
  }
  let db: Db | undefined;
  try {
    db = new Database(location, { timeout: busyTimeoutMs });
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    // WAL: readers never block the writer. synchronous=NORMAL can lose the
    // last commits on power loss (not on a crash); losing a `stored` mark
    // only means a recording is downloaded and verified again.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db, location);
  } catch (err) {
    db?.close();
    throw openError(err, location);
  }
  return { db, location };
}

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Database.SqliteError ? err.code : undefined;
}

function openError(err: unknown, location: string): CxrecError {
  if (err instanceof CxrecError) return err;
  const code = sqliteCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB') {
    return new CxrecError(
      'ledger',
      `${location} is not a SQLite database; point CXREC_STATE at a new file or at an existing cxrec ledger`,
      { cause: err },
    );
  }
  if (code === 'SQLITE_READONLY') {
    return new CxrecError(
      'ledger',
      `the ledger ${location} is read-only; make it (and its folder) writable`,
      {
        cause: err,
      },
    );
  }
  if (
    code === 'SQLITE_CANTOPEN' ||
    code === 'SQLITE_IOERR' ||
    (err instanceof TypeError && /directory/.test(detail))
  ) {
    return new CxrecError(
      'ledger',
      `cannot open the ledger ${location} (${detail}); set CXREC_STATE to a writable file path`,
      { cause: err },
    );
  }
  return new CxrecError('ledger', `cannot open the ledger ${location}: ${detail}`, { cause: err });
}

/**
 * Applies the migrations this file has not seen, each with its row in
 * `schema_migrations`, all under one write lock so two processes starting
 * at once do not both apply them.
 */
function migrate(db: Db, location: string): void {
  const migrations = readMigrations('sqlite');
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT    NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
    const applied = db.prepare<[], { version: number }>('SELECT version FROM schema_migrations').all();
    const known = new Set(migrations.map((m) => m.version));
    const newer = applied.find((a) => !known.has(a.version));
    if (newer) {
      throw new CxrecError(
        'ledger',
        `the ledger ${location} was written by a newer cxrec (migration ${newer.version}); upgrade cxrec`,
      );
    }
    const done = new Set(applied.map((a) => a.version));
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      try {
        db.exec(m.sql);
      } catch (err) {
        throw new CxrecError(
          'ledger',
          `migration ${m.version}_${m.name} failed on ${location}: ${err instanceof Error ? err.message : String(err)}; is this a cxrec ledger?`,
          { cause: err },
        );
      }
      record.run(m.version, m.name, Date.now());
    }
  }).immediate();
}

/** A job key as named SQL parameters. */
interface KeyParams {
  recording_id: string;
  channel: string;
}

function keyParams(key: JobKey): KeyParams {
  return { recording_id: key.recordingId, channel: key.channel };
}

const finalStateList =
  "'stored', 'purged', 'media_unavailable', 'failed_processing', 'out_of_retention', 'failed'";

type SqlParams = Record<string, unknown>;

/** Makes `listConditions` placeholders: each value becomes `@pN` in `params`. */
function sqlParam(params: SqlParams): (value: unknown) => string {
  return (value) => {
    const name = `p${Object.keys(params).length}`;
    params[name] = value;
    return `@${name}`;
  };
}

/** The SELECT of `list` and of one `iterate` page (after `after`, at most `limit` rows). */
export function listQuery(
  filter: Omit<ListFilter, 'limit'>,
  after: ListPosition | undefined,
  limit: number | undefined,
): { sql: string; params: SqlParams } {
  const params: SqlParams = {};
  const param = sqlParam(params);
  const where = listConditions(filter, param, after);
  // Rows holding a token are few: without statistics SQLite would rather
  // scan the whole createdDate index to skip a sort of those few rows.
  const from = filter.withUpload === true ? 'jobs INDEXED BY jobs_upload' : 'jobs';
  const sql = `SELECT * FROM ${from} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
               ORDER BY created_date, recording_id, channel
               ${limit === undefined ? '' : `LIMIT ${param(limit)}`}`;
  return { sql, params };
}

// Due pending rows and expired leases, oldest next_run_at first. Taking
// over an expired lease counts an attempt (its holder died in one). Each
// kind is read apart, in index order and cut at the limit (jobs_due
// serves the pending rows already sorted; an OR of both would sort every
// due row of the ledger), then the two short lists are merged.
export const claimSql = `
UPDATE jobs SET
  attempts = attempts + CASE WHEN state = 'downloading' THEN 1 ELSE 0 END,
  state = 'downloading',
  lease_owner = @owner,
  lease_expires_at = @expires,
  updated_at = @wall
WHERE rowid IN (
  SELECT id FROM (
    SELECT * FROM (
      SELECT rowid AS id, next_run_at, recording_id, channel FROM jobs
      WHERE state = 'pending' AND next_run_at <= @now
      ORDER BY next_run_at, recording_id, channel
      LIMIT @limit
    )
    UNION ALL
    SELECT * FROM (
      SELECT rowid AS id, next_run_at, recording_id, channel FROM jobs
      WHERE state = 'downloading' AND lease_expires_at <= @now
      ORDER BY next_run_at, recording_id, channel
      LIMIT @limit
    )
  )
  ORDER BY next_run_at, recording_id, channel
  LIMIT @limit
)
RETURNING *
`;

/** manifest and verify: the first page of stored rows in key order (jobs_state_key). */
export const storedFirstPageSql = `SELECT * FROM jobs WHERE state = 'stored'
  ORDER BY recording_id, channel LIMIT @limit`;
/** manifest and verify: the page after (@recording_id, @channel). */
export const storedPageSql = `SELECT * FROM jobs
  WHERE state = 'stored' AND (recording_id, channel) > (@recording_id, @channel)
  ORDER BY recording_id, channel LIMIT @limit`;

/** The SELECT of `countRows`. */
export function countQuery(filter: CountFilter): { sql: string; params: SqlParams } {
  const params: SqlParams = {};
  const where = listConditions(filter, sqlParam(params));
  const sql = `SELECT state, reason, COUNT(*) AS n FROM jobs
               ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
               GROUP BY state, reason`;
  return { sql, params };
}

/** status: rows and stored bytes per state and reason, from the jobs_state_reason index alone. */
export const countsGroupsSql = `SELECT state, reason, COUNT(*) AS n, SUM(stored_size_bytes) AS bytes
  FROM jobs GROUP BY state, reason`;
/** status: the oldest unsettled row, one index lookup per working state. */
export const oldestBacklogSql = `SELECT MIN(oldest) AS oldest FROM (
    SELECT MIN(created_date) AS oldest FROM jobs WHERE state = 'waiting'
    UNION ALL SELECT MIN(created_date) FROM jobs WHERE state = 'pending'
    UNION ALL SELECT MIN(created_date) FROM jobs WHERE state = 'downloading'
  )`;
/** status: the most recent error (jobs_last_error holds only rows that have one). */
export const lastErrorSql = `SELECT * FROM jobs WHERE last_error_at IS NOT NULL
  ORDER BY last_error_at DESC, updated_at DESC LIMIT 1`;

export class SqliteLedger implements Ledger {
  readonly location: string;
  readonly #db: Db;
  readonly #upsert: Database.Statement<DiscoveredRecord>;
  readonly #exists: Database.Statement<KeyParams, { one: number }>;
  readonly #claim: Database.Statement<
    { owner: string; now: number; expires: number; limit: number; wall: number },
    JobRecord
  >;
  #closed = false;

  constructor(db: Db, location: string) {
    this.#db = db;
    this.location = location;
    // A leased row keeps its state (its holder decides how it ends); a
    // row pending before and after keeps its next_run_at so a re-listing
    // cannot cut short a retry backoff. Final rows are skipped by WHERE.
    this.#upsert = db.prepare(`
      INSERT INTO jobs (
        recording_id, channel, state, reason,
        contact_id, status, created_date, duration_seconds, direction, agent_id, skill_name,
        contact_ids, from_address, to_address, skill_id, agent_name,
        next_run_at, first_seen_at, updated_at
      ) VALUES (
        @recording_id, @channel, @state, @reason,
        @contact_id, @status, @created_date, @duration_seconds, @direction, @agent_id, @skill_name,
        @contact_ids, @from_address, @to_address, @skill_id, @agent_name,
        @next_run_at, @first_seen_at, @updated_at
      )
      ON CONFLICT (recording_id, channel) DO UPDATE SET
        contact_id       = excluded.contact_id,
        status           = excluded.status,
        created_date     = excluded.created_date,
        duration_seconds = excluded.duration_seconds,
        direction        = excluded.direction,
        agent_id         = excluded.agent_id,
        skill_name       = excluded.skill_name,
        contact_ids      = excluded.contact_ids,
        from_address     = excluded.from_address,
        to_address       = excluded.to_address,
        skill_id         = excluded.skill_id,
        agent_name       = excluded.agent_name,
        state  = CASE WHEN jobs.state = 'downloading' THEN jobs.state ELSE excluded.state END,
        reason = CASE WHEN jobs.state = 'downloading' THEN jobs.reason ELSE excluded.reason END,
        next_run_at = CASE
          WHEN jobs.state = 'downloading' THEN jobs.next_run_at
          WHEN jobs.state = 'pending' AND excluded.state = 'pending' THEN jobs.next_run_at
          ELSE excluded.next_run_at
        END,
        updated_at = excluded.updated_at
      WHERE jobs.state NOT IN (${finalStateList})
    `);
    // A primary-key lookup: tells an insert from an update without counting the ledger.
    this.#exists = db.prepare(
      'SELECT 1 AS one FROM jobs WHERE recording_id = @recording_id AND channel = @channel',
    );
    this.#claim = db.prepare(claimSql);
  }

  /** Runs a statement, turning driver errors into ledger errors that name the file. */
  #sync<T>(what: string, fn: () => T): T {
    if (this.#closed)
      throw new CxrecError('ledger', `the ledger ${this.location} is closed`, { context: { what } });
    try {
      return fn();
    } catch (err) {
      if (err instanceof CxrecError) throw err;
      const code = sqliteCode(err);
      // Another process held the write lock longer than busy_timeout: worth another go.
      const retryable = code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
      throw new CxrecError(
        'ledger',
        `ledger ${what} failed on ${this.location}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err, retryable },
      );
    }
  }
  /** Runs one write statement; how many rows it changed. */
  #changes(what: string, sql: string, params: Record<string, unknown>): number {
    return this.#sync(what, () => this.#db.prepare(sql).run(params).changes);
  }

  /** One UPDATE of a row `owner` leases (`set` is its SET clauses); false when the lease was lost. */
  #updateLeased(
    what: string,
    key: JobKey,
    owner: string,
    set: string,
    params: Record<string, unknown>,
  ): boolean {
    const sql = `UPDATE jobs SET ${set} WHERE ${leaseHeld}`;
    return this.#changes(what, sql, { ...keyParams(key), owner, ...params }) === 1;
  }

  async upsertDiscovered(jobs: readonly DiscoveredJob[]): Promise<UpsertResult> {
    const wall = Date.now();
    const records = lastPerKey(jobs).map((j) => toDiscoveredRecord(j, wall));
    return this.#sync('upsert', () =>
      this.#db
        .transaction(() => {
          let inserted = 0;
          let updated = 0;
          for (const r of records) {
            const existed = this.#exists.get(r) !== undefined;
            const changes = this.#upsert.run(r).changes;
            if (!existed) inserted += changes;
            else updated += changes;
          }
          return { inserted, updated };
        })
        .immediate(),
    );
  }

  async claim(options: ClaimOptions): Promise<JobRow[]> {
    if (options.limit <= 0) return [];
    const rows = this.#sync('claim', () =>
      this.#db
        .transaction(() =>
          this.#claim.all({
            owner: options.owner,
            now: options.now,
            expires: options.now + options.leaseMs,
            limit: options.limit,
            wall: Date.now(),
          }),
        )
        .immediate(),
    );
    // RETURNING gives no order guarantee.
    rows.sort((a, b) => a.next_run_at - b.next_run_at || compareKey(a, b));
    return rows.map(toJobRow);
  }

  async renewLease(key: JobKey, owner: string, leaseMs: number, now: number): Promise<boolean> {
    return this.#updateLeased('renewLease', key, owner, 'lease_expires_at = @expires, updated_at = @wall', {
      expires: now + leaseMs,
      wall: Date.now(),
    });
  }

  async finish(key: JobKey, owner: string, outcome: FinishOutcome): Promise<boolean> {
    if (!isFinalState(outcome.state)) {
      throw new CxrecError('ledger', `finish needs a final state, not ${String(outcome.state)}`);
    }
    const s = outcome.stored;
    // A committed upload's token means nothing any more; any other outcome
    // keeps it so listAbandonedUploads can report what is left staged.
    const set = `state = @state,
               reason = @reason,
               detail = @detail,
               stored_key = @stored_key,
               stored_size_bytes = @stored_size_bytes,
               stored_md5 = @stored_md5,
               stored_sha256 = @stored_sha256,
               stored_content_type = @stored_content_type,
               stored_at = @stored_at,
               upload_token = CASE WHEN @state = 'stored' THEN NULL ELSE upload_token END,
               upload_bytes = CASE WHEN @state = 'stored' THEN NULL ELSE upload_bytes END,
               ${releaseLease}`;
    return this.#updateLeased('finish', key, owner, set, {
      state: outcome.state,
      reason: outcome.reason ?? null,
      detail: outcome.detail === undefined ? null : scrubText(outcome.detail),
      ...errorColumns(outcome.errorCode, outcome.errorMessage),
      stored_key: s?.key ?? null,
      stored_size_bytes: s?.sizeBytes ?? null,
      stored_md5: s?.md5 ?? null,
      stored_sha256: s?.sha256 ?? null,
      stored_content_type: s?.contentType ?? null,
      stored_at: s?.storedAt ?? null,
      wall: Date.now(),
    });
  }

  async defer(key: JobKey, owner: string, next: Deferral): Promise<boolean> {
    // The upload token stays: a parked upload is resumed by the next claim.
    const set = `state = @state,
               next_run_at = @next_run_at,
               attempts = attempts + @add_attempts,
               status = COALESCE(@status, status),
               ${releaseLease}`;
    return this.#updateLeased('defer', key, owner, set, {
      state: next.state,
      next_run_at: next.nextRunAt,
      add_attempts: next.countAttempt ? 1 : 0,
      status: next.status ?? null,
      ...errorColumns(next.errorCode, next.errorMessage),
      wall: Date.now(),
    });
  }

  async setUpload(
    key: JobKey,
    owner: string,
    upload: { token: string; bytes: number } | null,
  ): Promise<boolean> {
    return this.#updateLeased(
      'setUpload',
      key,
      owner,
      'upload_token = @token, upload_bytes = @bytes, updated_at = @wall',
      {
        token: upload?.token ?? null,
        bytes: upload?.bytes ?? null,
        wall: Date.now(),
      },
    );
  }

  async markAvailable(recordingIds: readonly string[], now: number): Promise<number> {
    if (recordingIds.length === 0) return 0;
    const changes = this.#changes(
      'markAvailable',
      `UPDATE jobs SET state = 'pending', status = 'Available', next_run_at = @now, updated_at = @wall
             WHERE state = 'waiting' AND recording_id IN (SELECT value FROM json_each(@ids))`,
      { ids: JSON.stringify(recordingIds), now, wall: Date.now() },
    );
    return changes;
  }

  async get(key: JobKey): Promise<JobRow | undefined> {
    const row = this.#sync('get', () =>
      this.#db
        .prepare<KeyParams, JobRecord>(
          'SELECT * FROM jobs WHERE recording_id = @recording_id AND channel = @channel',
        )
        .get(keyParams(key)),
    );
    return row && toJobRow(row);
  }

  async list(filter: ListFilter): Promise<JobRow[]> {
    if (filter.states?.length === 0) return [];
    const { sql, params } = listQuery(filter, undefined, filter.limit);
    const rows = this.#sync('list', () => this.#db.prepare<SqlParams, JobRecord>(sql).all(params));
    return rows.map(toJobRow);
  }

  async *iterate(filter: Omit<ListFilter, 'limit'>): AsyncIterable<JobRow> {
    if (filter.states?.length === 0) return;
    // Keyset pages, as in listStored: no statement stays open across the caller's awaits.
    let after: ListPosition | undefined;
    for (;;) {
      const { sql, params } = listQuery(filter, after, iteratePageSize);
      const page = this.#sync('iterate', () => this.#db.prepare<SqlParams, JobRecord>(sql).all(params));
      for (const row of page) yield toJobRow(row);
      after = page.at(-1);
      if (!after || page.length < iteratePageSize) return;
      await setImmediate();
    }
  }

  async countRows(filter: CountFilter): Promise<RowCounts> {
    if (filter.states?.length === 0) return { byState: {}, byReason: {} };
    const { sql, params } = countQuery(filter);
    return groupCounts(
      this.#sync('countRows', () => this.#db.prepare<SqlParams, StateGroup>(sql).all(params)),
    );
  }

  async *listStored(): AsyncIterable<JobRow> {
    // Keyset pages: an open better-sqlite3 iterator would block every other
    // statement on this connection while the caller awaits between rows.
    const first = this.#db.prepare<{ limit: number }, JobRecord>(storedFirstPageSql);
    const next = this.#db.prepare<KeyParams & { limit: number }, JobRecord>(storedPageSql);
    let page = this.#sync('listStored', () => first.all({ limit: storedPageSize }));
    while (page.length > 0) {
      for (const row of page) yield toJobRow(row);
      const last = page[page.length - 1];
      if (!last || page.length < storedPageSize) return;
      // better-sqlite3 is synchronous: let other work run between pages.
      await setImmediate();
      page = this.#sync('listStored', () =>
        next.all({ recording_id: last.recording_id, channel: last.channel, limit: storedPageSize }),
      );
    }
  }

  async listAbandonedUploads(now: number): Promise<JobRow[]> {
    const rows = this.#sync('listAbandonedUploads', () =>
      this.#db
        .prepare<{ now: number }, JobRecord>(
          `SELECT * FROM jobs
           WHERE upload_token IS NOT NULL
             AND (lease_owner IS NULL OR lease_expires_at <= @now)
           ORDER BY recording_id, channel`,
        )
        .all({ now }),
    );
    return rows.map(toJobRow);
  }

  async clearAbandonedUpload(key: JobKey, token: string, now: number): Promise<boolean> {
    const changes = this.#changes(
      'clearAbandonedUpload',
      `UPDATE jobs SET upload_token = NULL, upload_bytes = NULL, updated_at = @wall
             WHERE recording_id = @recording_id AND channel = @channel
               AND upload_token = @token
               AND (lease_owner IS NULL OR lease_expires_at <= @now)`,
      { ...keyParams(key), token, now, wall: Date.now() },
    );
    return changes === 1;
  }

  async counts(): Promise<LedgerCounts> {
    // Three statements, each served by an index (jobs_state_reason covers the
    // first; the oldest unsettled row is a MIN per state on jobs_state_created),
    // whatever the ledger's size.
    return this.#sync('counts', () => {
      const groups = this.#db.prepare<[], StateGroup>(countsGroupsSql).all();
      const oldest = this.#db.prepare<[], { oldest: string | null }>(oldestBacklogSql).get();
      const lastError = this.#db.prepare<[], JobRecord>(lastErrorSql).get();
      return buildCounts({ groups, oldestBacklogCreatedDate: oldest?.oldest ?? null, lastError });
    });
  }

  async overview(query: OverviewQuery): Promise<LedgerOverview> {
    return this.#sync('overview', () => {
      // One pass over the backlog for every age (a column per age: `n0`, `n1`, …).
      const ages = query.backlogAgesMs;
      const olderThan =
        ages.length === 0
          ? undefined
          : this.#db
              .prepare<string[], Record<string, number | null>>(
                `SELECT ${ages.map((_, i) => `SUM(created_date < ?) AS n${i}`).join(', ')} FROM jobs
                   WHERE state IN ('waiting', 'pending', 'downloading')`,
              )
              .get(...ages.map((age) => createdDateBound(query.now - age)));
      const backlogOlderThan = ages.map((_, i) => olderThan?.[`n${i}`] ?? 0);
      const storedPerMinute = this.#db
        .prepare<{ since: number }, { minute: number; count: number }>(
          `SELECT stored_at / 60000 AS minute, COUNT(*) AS count FROM jobs
             WHERE state = 'stored' AND stored_at >= @since GROUP BY minute ORDER BY minute`,
        )
        .all({ since: query.since });
      const apiGrantsPerMinute = this.#db
        .prepare<{ since: number }, { minute: number; count: number }>(
          `SELECT acquired_at / 60000 AS minute, COUNT(*) AS count FROM rate_limit_log
             WHERE budget = 'api' AND acquired_at >= @since GROUP BY minute ORDER BY minute`,
        )
        .all({ since: query.since });
      const failures = this.#db
        .prepare<{ limit: number }, JobRecord>(
          `SELECT * FROM jobs WHERE state = 'failed'
             ORDER BY updated_at DESC, recording_id, channel LIMIT @limit`,
        )
        .all({ limit: query.failures });
      return {
        backlogOlderThan,
        storedPerMinute,
        apiGrantsPerMinute,
        recentFailures: failures.map(toJobRow),
      };
    });
  }

  async find(id: string, limit: number): Promise<JobRow[]> {
    const rows = this.#sync('find', () =>
      this.#db
        .prepare<{ id: string; limit: number }, JobRecord>(
          `SELECT * FROM jobs
             WHERE recording_id = @id OR contact_id = @id
                OR instr(',' || contact_ids || ',', ',' || @id || ',') > 0
             ORDER BY recording_id, channel LIMIT @limit`,
        )
        .all({ id, limit }),
    );
    return rows.map(toJobRow);
  }

  async acquireLease(name: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    // One UPSERT: insert a free name, or take over / renew only when the
    // WHERE allows; `changes` is 0 when another owner's live lease stands.
    const changes = this.#changes(
      'acquireLease',
      `INSERT INTO leases (name, owner, expires_at, updated_at) VALUES (@name, @owner, @expires, @wall)
             ON CONFLICT (name) DO UPDATE SET
               owner = excluded.owner, expires_at = excluded.expires_at, updated_at = excluded.updated_at
             WHERE leases.owner = excluded.owner OR leases.expires_at <= @now`,
      { name, owner, expires: now + leaseMs, now, wall: Date.now() },
    );
    return changes === 1;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    this.#sync('releaseLease', () =>
      this.#db.prepare('DELETE FROM leases WHERE name = ? AND owner = ?').run(name, owner),
    );
    return;
  }

  async retrySettled(filter: RetryFilter): Promise<number> {
    assertRetryableState(filter.state);
    const created = filter.created ? createdDateBounds(filter.created) : undefined;
    // instr over lower(): a plain substring, so `%` or `_` in the text match themselves.
    return this.#changes(
      'retrySettled',
      `UPDATE jobs SET state = 'pending', reason = NULL, attempts = 0, next_run_at = @now,
               lease_owner = NULL, lease_expires_at = NULL, updated_at = @wall
             WHERE state = @state
               AND (@reason IS NULL OR instr(lower(COALESCE(reason, '')), lower(@reason)) > 0)
               AND (@from IS NULL OR created_date >= @from)
               AND (@to IS NULL OR created_date < @to)`,
      {
        state: filter.state,
        reason: filter.reasonContains ?? null,
        from: created?.from ?? null,
        to: created?.to ?? null,
        now: filter.now,
        wall: Date.now(),
      },
    );
  }

  async startExport(start: ExportStart): Promise<number> {
    const id = this.#sync(
      'startExport',
      () =>
        this.#db
          .prepare(
            `INSERT INTO exports (started_at, since, until, selection, dialect)
           VALUES (@started_at, @since, @until, @selection, @dialect)`,
          )
          .run({
            started_at: start.startedAt,
            since: start.since,
            until: start.until,
            selection: start.selection,
            dialect: start.dialect,
          }).lastInsertRowid,
    );
    return Number(id);
  }

  async finishExport(id: number, end: ExportEnd): Promise<boolean> {
    const changes = this.#changes(
      'finishExport',
      `UPDATE exports SET ended_at = @ended_at, exit_code = @exit_code, counts = @counts WHERE id = @id`,
      {
        id,
        ended_at: end.endedAt,
        exit_code: end.exitCode,
        counts: end.counts === null ? null : JSON.stringify(end.counts),
      },
    );
    return changes === 1;
  }

  async listExports(limit: number): Promise<ExportRecord[]> {
    const rows = this.#sync('listExports', () =>
      this.#db
        .prepare<{ limit: number }, ExportRow>(`SELECT * FROM exports ORDER BY id DESC LIMIT @limit`)
        .all({ limit: Math.max(0, Math.floor(limit)) }),
    );
    return rows.map(toExportRecord);
  }

  async heartbeat(owner: Owner): Promise<void> {
    const wall = Date.now();
    this.#changes(
      'heartbeat',
      `INSERT INTO processes (owner_id, host, pid, kernel, started_at, heartbeat_at)
             VALUES (@id, @host, @pid, @kernel, @wall, @wall)
             ON CONFLICT (owner_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      { id: owner.id, host: owner.host, pid: owner.pid, kernel: owner.kernel, wall },
    );
  }

  async listOwners(): Promise<OwnerRow[]> {
    const rows = this.#sync('listOwners', () =>
      this.#db.prepare<[], ProcessRecord>('SELECT * FROM processes ORDER BY started_at, owner_id').all(),
    );
    return rows.map((r) => toOwnerRow(r, Date.now()));
  }

  async removeOwner(id: string): Promise<void> {
    this.#changes('removeOwner', 'DELETE FROM processes WHERE owner_id = @id', { id });
  }

  async getWatermark(name: string): Promise<string | undefined> {
    const row = this.#sync('getWatermark', () =>
      this.#db.prepare<[string], { value: string }>('SELECT value FROM watermarks WHERE name = ?').get(name),
    );
    return row?.value;
  }

  async setWatermark(name: string, value: string): Promise<void> {
    this.#sync('setWatermark', () =>
      this.#db
        .prepare(
          `INSERT INTO watermarks (name, value, updated_at) VALUES (@name, @value, @wall)
           ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        )
        .run({ name, value, wall: Date.now() }),
    );
    return;
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#db.close();
    }
    return;
  }
}
