/**
 * The ledger in PostgreSQL, for several processes sharing the work.
 *
 * Same table and rules as the SQLite ledger. Claims are one statement that
 * locks due rows with FOR UPDATE SKIP LOCKED, so concurrent claimers never
 * wait on each other nor take the same row; migrations run under a
 * session advisory lock, so processes starting at once apply each exactly
 * once.
 */
import pg from 'pg';

import { CxrecError, systemCode } from '../errors.js';
import { redactUrlPassword, scrubText } from '../redact.js';
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

/** Arbitrary, fixed: the advisory lock every cxrec process takes to migrate. */
const migrationLockKey = 0x63787265; // 'cxre'
/** Rows per INSERT: keeps each statement's arrays well under protocol limits. */
const upsertChunk = 5000;
const storedPageSize = 1000;

/** BIGINT columns hold ms timestamps and byte counts, all below 2^53: read them as numbers, not strings. */
const int8Oid = 20;
type TypeParser = (oid: number, format?: 'text' | 'binary') => (value: string) => unknown;
const builtinParser = pg.types.getTypeParser as TypeParser;
const parseType: TypeParser = (oid, format) =>
  oid === int8Oid && format !== 'binary' ? Number : builtinParser(oid, format);
const types = { getTypeParser: parseType };

/** Connection faults and PostgreSQL's "try again" errors are worth a retry; anything else is a bug or a setup fault. */
export function isTransient(err: unknown): boolean {
  const code = systemCode(err);
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    code === '40001' || // serialization_failure
    code === '40P01' || // deadlock_detected
    code === '57P01' || // admin_shutdown
    code === '08006' || // connection_failure
    code === '08001'
  );
}

function ledgerError(what: string, location: string, err: unknown): CxrecError {
  if (err instanceof CxrecError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new CxrecError('ledger', `ledger ${what} failed on ${location}: ${detail}`, {
    cause: err,
    retryable: isTransient(err),
  });
}

/**
 * A pool on `url` for one cxrec component (the ledger, the rate budgets).
 * BIGINT columns read as numbers (see `types`).
 */
export function openPostgresPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, types, max, connectionTimeoutMillis: 10_000 });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return pool;
}

/** Connects to the database named by `url` and brings its schema up to date. */
export async function openPostgresLedger(url: string): Promise<PostgresLedger> {
  const location = redactUrlPassword(url);
  const pool = openPostgresPool(url, 10);
  try {
    await migratePostgres(pool, location);
  } catch (err) {
    await pool.end();
    if (err instanceof CxrecError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new CxrecError(
      'ledger',
      `cannot open the ledger database ${location} (${detail}); check CXREC_STATE: host, port, user, database and that the server runs`,
      { cause: err, retryable: isTransient(err) },
    );
  }
  return new PostgresLedger(pool, location);
}

/**
 * Brings the schema of the database behind `pool` up to date: the ledger's
 * tables and the shared rate limiter's (one migration history per
 * database, whichever cxrec component connects first). Safe to call from
 * many processes at once.
 */
export async function migratePostgres(pool: pg.Pool, location: string): Promise<void> {
  const migrations = readMigrations('postgres');
  const client = await pool.connect();
  try {
    // A session lock (not a transaction lock) so each migration can commit on its own.
    await client.query('SELECT pg_advisory_lock($1)', [migrationLockKey]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT    NOT NULL,
        applied_at BIGINT  NOT NULL
      )`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const known = new Set(migrations.map((m) => m.version));
      const newer = rows.find((r) => !known.has(r.version));
      if (newer) {
        throw new CxrecError(
          'ledger',
          `the ledger ${location} was written by a newer cxrec (migration ${newer.version}); upgrade cxrec`,
        );
      }
      const done = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query(
            'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
            [m.version, m.name, Date.now()],
          );
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new CxrecError(
            'ledger',
            `migration ${m.version}_${m.name} failed on ${location}: ${err instanceof Error ? err.message : String(err)}; is this a cxrec ledger?`,
            { cause: err },
          );
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]);
    }
  } finally {
    client.release();
  }
}

const finalStateList =
  "'stored', 'purged', 'media_unavailable', 'failed_processing', 'out_of_retention', 'failed'";

// A leased row keeps its state (its holder decides how it ends); a row
// pending before and after keeps its next_run_at so a re-listing cannot cut
// short a retry backoff. Final rows are skipped by WHERE. `xmax = 0` is
// true only for a freshly inserted row version, which tells inserts from
// updates.
const upsertSql = `
  INSERT INTO jobs AS j (
    recording_id, channel, state, reason,
    contact_id, status, created_date, duration_seconds, direction, agent_id, skill_name,
    contact_ids, from_address, to_address, skill_id, agent_name,
    next_run_at, first_seen_at, updated_at
  )
  SELECT u.*, $18::bigint, $18::bigint
  FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[],
    $5::text[], $6::text[], $7::text[], $8::float8[], $9::text[], $10::text[], $11::text[],
    $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
    $17::bigint[]
  ) AS u
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
    state  = CASE WHEN j.state = 'downloading' THEN j.state ELSE excluded.state END,
    reason = CASE WHEN j.state = 'downloading' THEN j.reason ELSE excluded.reason END,
    next_run_at = CASE
      WHEN j.state = 'downloading' THEN j.next_run_at
      WHEN j.state = 'pending' AND excluded.state = 'pending' THEN j.next_run_at
      ELSE excluded.next_run_at
    END,
    updated_at = excluded.updated_at
  WHERE j.state NOT IN (${finalStateList})
  RETURNING (xmax = 0) AS inserted`;

// Due pending rows and expired leases, oldest next_run_at first; rows
// another claimer is locking right now are skipped, not waited for. Taking
// over an expired lease counts an attempt (its holder died in one). Each
// kind is read apart, in index order and cut at the limit (jobs_due serves
// the pending rows already sorted; an OR of both would sort every due row),
// then the two short lists are merged. Rows locked beyond the limit are
// released when the statement ends.
export const claimSql = `
  WITH pending AS (
    SELECT recording_id, channel, next_run_at FROM jobs
    WHERE state = 'pending' AND next_run_at <= $2
    ORDER BY next_run_at, recording_id, channel
    LIMIT $4
    FOR UPDATE SKIP LOCKED
  ), expired AS (
    SELECT recording_id, channel, next_run_at FROM jobs
    WHERE state = 'downloading' AND lease_expires_at <= $2
    ORDER BY next_run_at, recording_id, channel
    LIMIT $4
    FOR UPDATE SKIP LOCKED
  ), due AS (
    SELECT recording_id, channel FROM (SELECT * FROM pending UNION ALL SELECT * FROM expired) d
    ORDER BY next_run_at, recording_id, channel
    LIMIT $4
  )
  UPDATE jobs AS j SET
    attempts = j.attempts + CASE WHEN j.state = 'downloading' THEN 1 ELSE 0 END,
    state = 'downloading',
    lease_owner = $1,
    lease_expires_at = $3,
    updated_at = $5
  FROM due
  WHERE j.recording_id = due.recording_id AND j.channel = due.channel
  RETURNING j.*`;

/** status: rows and stored bytes per state and reason (SUM of bigint is numeric: cast back). */
export const countsGroupsSql = `SELECT state, reason, COUNT(*)::int AS n,
    COALESCE(SUM(stored_size_bytes), 0)::bigint AS bytes
  FROM jobs GROUP BY state, reason`;
/** status: the oldest unsettled row, one index lookup per working state. */
export const oldestBacklogSql = `SELECT LEAST(
    (SELECT MIN(created_date) FROM jobs WHERE state = 'waiting'),
    (SELECT MIN(created_date) FROM jobs WHERE state = 'pending'),
    (SELECT MIN(created_date) FROM jobs WHERE state = 'downloading')
  ) AS oldest`;
export const lastErrorSql = `SELECT * FROM jobs WHERE last_error_at IS NOT NULL
  ORDER BY last_error_at DESC, updated_at DESC LIMIT 1`;

/** The SELECT of `countRows`. */
export function countQuery(filter: CountFilter): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  const where = listConditions(filter, pgParam(values));
  const sql = `SELECT state, reason, COUNT(*)::int AS n FROM jobs
               ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
               GROUP BY state, reason`;
  return { sql, values };
}

/** manifest and verify: the first page of stored rows in key order (jobs_state_key). */
export const storedFirstPageSql = `SELECT * FROM jobs WHERE state = 'stored' ORDER BY recording_id, channel LIMIT $1`;
/** manifest and verify: the page after ($1, $2). */
export const storedPageSql = `SELECT * FROM jobs
  WHERE state = 'stored' AND (recording_id, channel) > ($1, $2)
  ORDER BY recording_id, channel LIMIT $3`;

/** Makes `listConditions` placeholders: each value becomes `$N` of `values`. */
function pgParam(values: unknown[]): (value: unknown) => string {
  return (value) => {
    values.push(value);
    return `$${values.length}`;
  };
}

/** The SELECT of `list` and of one `iterate` page (after `after`, at most `limit` rows). */
export function listQuery(
  filter: Omit<ListFilter, 'limit'>,
  after: ListPosition | undefined,
  limit: number | undefined,
): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  const param = pgParam(values);
  const where = listConditions(filter, param, after);
  const sql = `SELECT * FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
               ORDER BY created_date, recording_id, channel
               ${limit === undefined ? '' : `LIMIT ${param(limit)}`}`;
  return { sql, values };
}

/** The database server's clock in ms since the epoch, in SQL. */
const dbClockMs = `floor(extract(epoch from clock_timestamp()) * 1000)::bigint`;

const leaseHeld = `recording_id = $1 AND channel = $2 AND state = 'downloading' AND lease_owner = $3`;

/**
 * The SET clauses of a worker handing its lease back: the newest error is
 * kept (none given leaves the last one recorded). The arguments are the
 * placeholders of the error code, the error message and the wall clock.
 */
function releaseLease(code: string, message: string, wall: string): string {
  return `lease_owner = NULL,
         lease_expires_at = NULL,
         last_error_code    = COALESCE(${code}, last_error_code),
         last_error_message = COALESCE(${message}, last_error_message),
         last_error_at      = CASE WHEN ${code}::text IS NULL THEN last_error_at ELSE ${wall} END,
         updated_at = ${wall}`;
}

export class PostgresLedger implements Ledger {
  readonly location: string;
  readonly #pool: pg.Pool;
  #closed = false;
  readonly #wallClock: () => number;
  /** Database clock minus this host's clock, in ms (see `#leaseClock`). */
  #offset: number | undefined;
  #offsetMeasuredAt = 0;

  /** `wallClock` is this host's clock (a test skews it). */
  constructor(pool: pg.Pool, location: string, wallClock: () => number = Date.now) {
    this.#pool = pool;
    this.location = location;
    this.#wallClock = wallClock;
  }

  async #query<R extends pg.QueryResultRow>(
    what: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    if (this.#closed)
      throw new CxrecError('ledger', `the ledger ${this.location} is closed`, { context: { what } });
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (err) {
      throw ledgerError(what, this.location, err);
    }
  }

  async upsertDiscovered(jobs: readonly DiscoveredJob[]): Promise<UpsertResult> {
    if (jobs.length === 0) return { inserted: 0, updated: 0 };
    if (this.#closed) throw new CxrecError('ledger', `the ledger ${this.location} is closed`);
    const wall = Date.now();
    // Key order: two processes upserting overlapping batches lock rows in the
    // same order, so they queue instead of deadlocking.
    const records = lastPerKey(jobs)
      .map((j) => toDiscoveredRecord(j, wall))
      .sort((a, b) => compareKey(a, b));
    const client = await this.#pool.connect().catch((err: unknown) => {
      throw ledgerError('upsert', this.location, err);
    });
    try {
      await client.query('BEGIN');
      let inserted = 0;
      let updated = 0;
      for (let i = 0; i < records.length; i += upsertChunk) {
        const { rows } = await client.query<{ inserted: boolean }>(
          upsertSql,
          upsertParams(records.slice(i, i + upsertChunk), wall),
        );
        for (const r of rows) {
          if (r.inserted) inserted++;
          else updated++;
        }
      }
      await client.query('COMMIT');
      return { inserted, updated };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw ledgerError('upsert', this.location, err);
    } finally {
      client.release();
    }
  }

  async claim(options: ClaimOptions): Promise<JobRow[]> {
    if (options.limit <= 0) return [];
    const now = await this.#leaseClock(options.now);
    const { rows } = await this.#query<JobRecord>('claim', claimSql, [
      options.owner,
      now,
      now + options.leaseMs,
      options.limit,
      Date.now(),
    ]);
    // RETURNING gives no order guarantee.
    rows.sort((a, b) => a.next_run_at - b.next_run_at || compareKey(a, b));
    return rows.map(toJobRow);
  }

  /**
   * One UPDATE of a row `owner` leases: `set` is its SET clauses, whose
   * placeholders start at `$4` (`$1`–`$3` are the key and the owner).
   * False when the lease was lost.
   */
  async #updateLeased(
    what: string,
    key: JobKey,
    owner: string,
    set: string,
    values: readonly unknown[],
  ): Promise<boolean> {
    const { rowCount } = await this.#query(what, `UPDATE jobs SET ${set} WHERE ${leaseHeld}`, [
      key.recordingId,
      key.channel,
      owner,
      ...values,
    ]);
    return rowCount === 1;
  }

  async renewLease(key: JobKey, owner: string, leaseMs: number, now: number): Promise<boolean> {
    const leaseNow = await this.#leaseClock(now);
    return this.#updateLeased('renewLease', key, owner, 'lease_expires_at = $4, updated_at = $5', [
      leaseNow + leaseMs,
      Date.now(),
    ]);
  }

  async finish(key: JobKey, owner: string, outcome: FinishOutcome): Promise<boolean> {
    if (!isFinalState(outcome.state)) {
      throw new CxrecError('ledger', `finish needs a final state, not ${String(outcome.state)}`);
    }
    const s = outcome.stored;
    const e = errorColumns(outcome.errorCode, outcome.errorMessage);
    // A committed upload's token means nothing any more; any other outcome
    // keeps it so listAbandonedUploads can report what is left staged.
    const set = `state = $4,
         reason = $5,
         stored_key = $6,
         stored_size_bytes = $7,
         stored_md5 = $8,
         stored_sha256 = $9,
         stored_content_type = $10,
         stored_at = $11,
         upload_token = CASE WHEN $4 = 'stored' THEN NULL ELSE upload_token END,
         upload_bytes = CASE WHEN $4 = 'stored' THEN NULL ELSE upload_bytes END,
         ${releaseLease('$12', '$13', '$14')},
         detail = $15`;
    return this.#updateLeased('finish', key, owner, set, [
      outcome.state,
      outcome.reason ?? null,
      s?.key ?? null,
      s?.sizeBytes ?? null,
      s?.md5 ?? null,
      s?.sha256 ?? null,
      s?.contentType ?? null,
      s?.storedAt ?? null,
      e.error_code,
      e.error_message,
      Date.now(),
      outcome.detail === undefined ? null : scrubText(outcome.detail),
    ]);
  }

  async defer(key: JobKey, owner: string, next: Deferral): Promise<boolean> {
    const e = errorColumns(next.errorCode, next.errorMessage);
    // The upload token stays: a parked upload is resumed by the next claim.
    const set = `state = $4,
         next_run_at = $5,
         attempts = attempts + $6,
         status = COALESCE($7, status),
         ${releaseLease('$8', '$9', '$10')}`;
    return this.#updateLeased('defer', key, owner, set, [
      next.state,
      next.nextRunAt,
      next.countAttempt ? 1 : 0,
      next.status ?? null,
      e.error_code,
      e.error_message,
      Date.now(),
    ]);
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
      'upload_token = $4, upload_bytes = $5, updated_at = $6',
      [upload?.token ?? null, upload?.bytes ?? null, Date.now()],
    );
  }

  async markAvailable(recordingIds: readonly string[], now: number): Promise<number> {
    if (recordingIds.length === 0) return 0;
    const { rowCount } = await this.#query(
      'markAvailable',
      `UPDATE jobs SET state = 'pending', status = 'Available', next_run_at = $2, updated_at = $3
       WHERE state = 'waiting' AND recording_id = ANY($1::text[])`,
      [recordingIds, now, Date.now()],
    );
    return rowCount ?? 0;
  }

  async get(key: JobKey): Promise<JobRow | undefined> {
    const { rows } = await this.#query<JobRecord>(
      'get',
      'SELECT * FROM jobs WHERE recording_id = $1 AND channel = $2',
      [key.recordingId, key.channel],
    );
    const row = rows[0];
    return row && toJobRow(row);
  }

  async list(filter: ListFilter): Promise<JobRow[]> {
    if (filter.states?.length === 0) return [];
    const { sql, values } = listQuery(filter, undefined, filter.limit);
    const { rows } = await this.#query<JobRecord>('list', sql, values);
    return rows.map(toJobRow);
  }

  async *iterate(filter: Omit<ListFilter, 'limit'>): AsyncIterable<JobRow> {
    if (filter.states?.length === 0) return;
    // Keyset pages, as in listStored: no transaction stays open while the caller works.
    let after: ListPosition | undefined;
    for (;;) {
      const { sql, values } = listQuery(filter, after, iteratePageSize);
      const { rows } = await this.#query<JobRecord>('iterate', sql, values);
      for (const row of rows) yield toJobRow(row);
      after = rows.at(-1);
      if (!after || rows.length < iteratePageSize) return;
    }
  }

  async countRows(filter: CountFilter): Promise<RowCounts> {
    if (filter.states?.length === 0) return { byState: {}, byReason: {} };
    const { sql, values } = countQuery(filter);
    const { rows } = await this.#query<StateGroup>('countRows', sql, values);
    return groupCounts(rows);
  }

  async *listStored(): AsyncIterable<JobRow> {
    // Keyset pages rather than a cursor: no transaction stays open while the
    // caller (verify) spends minutes re-reading objects.
    let after: { recording_id: string; channel: string } | undefined;
    for (;;) {
      const { rows } = after
        ? await this.#query<JobRecord>('listStored', storedPageSql, [
            after.recording_id,
            after.channel,
            storedPageSize,
          ])
        : await this.#query<JobRecord>('listStored', storedFirstPageSql, [storedPageSize]);
      for (const row of rows) yield toJobRow(row);
      after = rows.at(-1);
      if (!after || rows.length < storedPageSize) return;
    }
  }

  async listAbandonedUploads(now: number): Promise<JobRow[]> {
    now = await this.#leaseClock(now);
    const { rows } = await this.#query<JobRecord>(
      'listAbandonedUploads',
      `SELECT * FROM jobs
       WHERE upload_token IS NOT NULL
         AND (lease_owner IS NULL OR lease_expires_at <= $1)
       ORDER BY recording_id, channel`,
      [now],
    );
    return rows.map(toJobRow);
  }

  async clearAbandonedUpload(key: JobKey, token: string, now: number): Promise<boolean> {
    now = await this.#leaseClock(now);
    const { rowCount } = await this.#query(
      'clearAbandonedUpload',
      `UPDATE jobs SET upload_token = NULL, upload_bytes = NULL, updated_at = $5
       WHERE recording_id = $1 AND channel = $2
         AND upload_token = $3
         AND (lease_owner IS NULL OR lease_expires_at <= $4)`,
      [key.recordingId, key.channel, token, now, Date.now()],
    );
    return rowCount === 1;
  }

  async counts(): Promise<LedgerCounts> {
    // Three statements, each served by an index (jobs_state_reason covers the
    // first; the oldest unsettled row is a MIN per state on jobs_state_created),
    // whatever the ledger's size.
    const [groups, oldest, lastError] = await Promise.all([
      this.#query<StateGroup>('counts', countsGroupsSql),
      this.#query<{ oldest: string | null }>('counts', oldestBacklogSql),
      this.#query<JobRecord>('counts', lastErrorSql),
    ]);
    return buildCounts({
      groups: groups.rows,
      oldestBacklogCreatedDate: oldest.rows[0]?.oldest ?? null,
      lastError: lastError.rows[0],
    });
  }

  async overview(query: OverviewQuery): Promise<LedgerOverview> {
    const perMinute = (rows: { minute: string | number; count: string | number }[]) =>
      rows.map((r) => ({ minute: Number(r.minute), count: Number(r.count) }));
    const [backlog, stored, grants, failures] = await Promise.all([
      this.#query<{ n: string }>(
        'overview',
        `SELECT (SELECT COUNT(*) FROM jobs
                   WHERE state IN ('waiting', 'pending', 'downloading') AND created_date < b) AS n
           FROM unnest($1::text[]) WITH ORDINALITY AS t(b, i) ORDER BY i`,
        [query.backlogAgesMs.map((age) => createdDateBound(query.now - age))],
      ),
      this.#query<{ minute: string; count: string }>(
        'overview',
        `SELECT stored_at / 60000 AS minute, COUNT(*) AS count FROM jobs
           WHERE state = 'stored' AND stored_at >= $1 GROUP BY minute ORDER BY minute`,
        [query.since],
      ),
      // The API budget's slots are keyed by the tenant key; the playback budget's add '#playback'.
      this.#query<{ minute: string; count: string }>(
        'overview',
        `SELECT floor(extract(epoch FROM acquired_at) / 60)::bigint AS minute, COUNT(*) AS count
           FROM rate_limit_slots
           WHERE tenant_key NOT LIKE '%#playback' AND acquired_at >= to_timestamp($1::double precision / 1000)
           GROUP BY minute ORDER BY minute`,
        [query.since],
      ),
      this.#query<JobRecord>(
        'overview',
        `SELECT * FROM jobs WHERE state = 'failed' ORDER BY updated_at DESC, recording_id, channel LIMIT $1`,
        [query.failures],
      ),
    ]);
    return {
      backlogOlderThan: backlog.rows.map((r) => Number(r.n)),
      storedPerMinute: perMinute(stored.rows),
      apiGrantsPerMinute: perMinute(grants.rows),
      recentFailures: failures.rows.map(toJobRow),
    };
  }

  async find(id: string, limit: number): Promise<JobRow[]> {
    const { rows } = await this.#query<JobRecord>(
      'find',
      `SELECT * FROM jobs
         WHERE recording_id = $1 OR contact_id = $1 OR $1 = ANY(string_to_array(contact_ids, ','))
         ORDER BY recording_id, channel LIMIT $2`,
      [id, limit],
    );
    return rows.map(toJobRow);
  }

  async acquireLease(name: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    now = await this.#leaseClock(now);
    // One statement: ON CONFLICT re-checks the WHERE against the latest
    // committed row (READ COMMITTED), so of two owners racing for a free or
    // expired name exactly one updates it; the other sees rowCount 0.
    const { rowCount } = await this.#query(
      'acquireLease',
      `INSERT INTO leases AS l (name, owner, expires_at, updated_at) VALUES ($1, $2, $3, $5)
       ON CONFLICT (name) DO UPDATE SET
         owner = excluded.owner, expires_at = excluded.expires_at, updated_at = excluded.updated_at
       WHERE l.owner = excluded.owner OR l.expires_at <= $4`,
      [name, owner, now + leaseMs, now, Date.now()],
    );
    return rowCount === 1;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.#query('releaseLease', 'DELETE FROM leases WHERE name = $1 AND owner = $2', [name, owner]);
  }

  async retrySettled(filter: RetryFilter): Promise<number> {
    assertRetryableState(filter.state);
    const created = filter.created ? createdDateBounds(filter.created) : undefined;
    // strpos over lower(): a plain substring, so `%` or `_` in the text match themselves.
    const { rowCount } = await this.#query(
      'retrySettled',
      `UPDATE jobs SET state = 'pending', reason = NULL, attempts = 0, next_run_at = $5,
         lease_owner = NULL, lease_expires_at = NULL, updated_at = $6
       WHERE state = $1
         AND ($2::text IS NULL OR strpos(lower(COALESCE(reason, '')), lower($2::text)) > 0)
         AND ($3::text IS NULL OR created_date >= $3)
         AND ($4::text IS NULL OR created_date < $4)`,
      [
        filter.state,
        filter.reasonContains ?? null,
        created?.from ?? null,
        created?.to ?? null,
        filter.now,
        Date.now(),
      ],
    );
    return rowCount ?? 0;
  }

  async startExport(start: ExportStart): Promise<number> {
    const { rows } = await this.#query<{ id: number }>(
      'startExport',
      `INSERT INTO exports (started_at, since, until, selection, dialect)
       VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [start.startedAt, start.since, start.until, start.selection, start.dialect],
    );
    const id = rows[0]?.id;
    if (id === undefined)
      throw new CxrecError('ledger', `ledger startExport returned no id on ${this.location}`);
    return id;
  }

  async finishExport(id: number, end: ExportEnd): Promise<boolean> {
    const { rowCount } = await this.#query(
      'finishExport',
      'UPDATE exports SET ended_at = $2, exit_code = $3, counts = $4 WHERE id = $1',
      [id, end.endedAt, end.exitCode, end.counts === null ? null : JSON.stringify(end.counts)],
    );
    return rowCount === 1;
  }

  async listExports(limit: number): Promise<ExportRecord[]> {
    const { rows } = await this.#query<ExportRow>(
      'listExports',
      'SELECT * FROM exports ORDER BY id DESC LIMIT $1',
      [Math.max(0, Math.floor(limit))],
    );
    return rows.map(toExportRecord);
  }

  async heartbeat(owner: Owner): Promise<void> {
    await this.#query(
      'heartbeat',
      `INSERT INTO processes (owner_id, host, pid, kernel, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, ${dbClockMs}, ${dbClockMs})
         ON CONFLICT (owner_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [owner.id, owner.host, owner.pid, owner.kernel],
    );
  }

  async listOwners(): Promise<OwnerRow[]> {
    const { rows } = await this.#query<ProcessRecord & { db_now: number }>(
      'listOwners',
      `SELECT *, ${dbClockMs} AS db_now FROM processes ORDER BY started_at, owner_id`,
    );
    return rows.map((r) => toOwnerRow(r, r.db_now));
  }

  async removeOwner(id: string): Promise<void> {
    await this.#query('removeOwner', 'DELETE FROM processes WHERE owner_id = $1', [id]);
  }

  /**
   * The caller's `now` moved onto the database server's clock, for lease
   * times: every process then measures leases on one clock, whatever its
   * host's clock says. The offset between the two clocks is measured at
   * most every 30 s (a query); clocks within a second of each other count
   * as agreeing, and only a change of more than a second is taken, so a
   * lease check does not jitter with the round trip.
   */
  async #leaseClock(now: number): Promise<number> {
    const wall = this.#wallClock();
    if (this.#offset === undefined || wall - this.#offsetMeasuredAt > 30_000) {
      const sent = this.#wallClock();
      const { rows } = await this.#query<{ db_now: number }>('clock', `SELECT ${dbClockMs} AS db_now`);
      const received = this.#wallClock();
      let measured = Math.round((rows[0]?.db_now ?? received) - (sent + received) / 2);
      // Within a second is agreement (a lease lasts a minute): the caller's
      // times are then kept exactly, not moved by round-trip noise.
      if (Math.abs(measured) <= 1_000) measured = 0;
      if (this.#offset === undefined || Math.abs(measured - this.#offset) > 1_000) this.#offset = measured;
      this.#offsetMeasuredAt = received;
    }
    return now + this.#offset;
  }

  async getWatermark(name: string): Promise<string | undefined> {
    const { rows } = await this.#query<{ value: string }>(
      'getWatermark',
      'SELECT value FROM watermarks WHERE name = $1',
      [name],
    );
    return rows[0]?.value;
  }

  async setWatermark(name: string, value: string): Promise<void> {
    await this.#query(
      'setWatermark',
      `INSERT INTO watermarks (name, value, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [name, value, Date.now()],
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/** Column arrays for one `unnest` INSERT, in the order of `upsertSql`. */
function upsertParams(records: readonly DiscoveredRecord[], wall: number): unknown[] {
  return [
    records.map((r) => r.recording_id),
    records.map((r) => r.channel),
    records.map((r) => r.state),
    records.map((r) => r.reason),
    records.map((r) => r.contact_id),
    records.map((r) => r.status),
    records.map((r) => r.created_date),
    records.map((r) => r.duration_seconds),
    records.map((r) => r.direction),
    records.map((r) => r.agent_id),
    records.map((r) => r.skill_name),
    records.map((r) => r.contact_ids),
    records.map((r) => r.from_address),
    records.map((r) => r.to_address),
    records.map((r) => r.skill_id),
    records.map((r) => r.agent_name),
    records.map((r) => r.next_run_at),
    wall,
  ];
}
