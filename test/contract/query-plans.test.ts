/**
 * The hot queries of a million-row ledger are served by the indexes of
 * migration 007 (and 001), not by a scan of the table: claim, the status
 * aggregates, an export window's rows, a manifest page, the staging sweep.
 * SQLite: `EXPLAIN QUERY PLAN` names the index and never shows a bare
 * `SCAN jobs`. PostgreSQL: `EXPLAIN` with sequential scans priced out names
 * the index and shows no `Seq Scan on jobs` (a query no index can serve
 * still gets a Seq Scan then). docs/architecture.md shows these plans.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import type { DiscoveredJob } from '../../src/state/ledger.js';
import { workingStates } from '../../src/state/ledger.js';
import * as pgq from '../../src/state/postgres.js';
import * as sq from '../../src/state/sqlite.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres-database.js';

// The rows span 83 days, one an hour: a window is a small part of the ledger, as at a million rows.
const window = { from: '2024-05-10T00:00:00Z', to: '2024-05-11T00:00:00Z' };
const page = { created_date: '2024-05-10T10:00:00Z', recording_id: 'r0226', channel: 'combined' };
const nearRetention = { from: new Date(0).toISOString(), to: '2024-05-05T00:00:00Z' };

/** What each hot query is, and the index that must serve it. */
const hot = [
  { name: 'claim', index: 'jobs_due' },
  { name: 'status: rows per state and reason', index: 'jobs_state_reason' },
  { name: 'status: oldest unsettled row', index: 'jobs_state_created' },
  { name: 'status: last error', index: 'jobs_last_error' },
  // Either createdDate index bounds these to the window: PostgreSQL takes jobs_created when
  // most of the window is unsettled, jobs_state_created when most of it is settled.
  { name: "export: the window's unsettled rows, counted", index: 'jobs_state_created|jobs_created' },
  { name: "export: a page of the window's rows", index: 'jobs_created' },
  { name: 'metrics: unsettled rows near retention', index: 'jobs_state_created|jobs_created' },
  { name: 'manifest/verify: a page of stored rows', index: 'jobs_state_key' },
  { name: 'staging sweep: rows holding an upload', index: 'jobs_upload' },
] as const;

function rows(n: number): DiscoveredJob[] {
  return Array.from({ length: n }, (_, i) => {
    const recordingId = `r${String(i).padStart(4, '0')}`;
    const createdDate = new Date(Date.UTC(2024, 4, 1) + i * 3_600_000)
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    return {
      recordingId,
      channel: 'combined',
      state: i % 3 === 0 ? 'out_of_retention' : 'pending',
      ...(i % 3 === 0 ? { reason: 'older than 70 % of retention' } : {}),
      nextRunAt: 1_700_000_000_000 + i,
      meta: { recordingId, status: 'Available', createdDate },
    };
  });
}

describe('query plans: sqlite', () => {
  const { db } = sq.openSqliteDatabase(':memory:');
  after(() => db.close());
  const plan = (sql: string, params: Record<string, unknown> = {}): string[] =>
    db
      .prepare<Record<string, unknown>, { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
      .all(params)
      .map((r) => r.detail);
  const list = (q: { sql: string; params: Record<string, unknown> }) => plan(q.sql, q.params);
  const plans: Record<(typeof hot)[number]['name'], string[]> = {
    claim: plan(sq.claimSql, { owner: 'w', expires: 2, wall: 0, now: 1, limit: 4 }),
    'status: rows per state and reason': plan(sq.countsGroupsSql),
    'status: oldest unsettled row': plan(sq.oldestBacklogSql),
    'status: last error': plan(sq.lastErrorSql),
    "export: the window's unsettled rows, counted": list(
      sq.countQuery({ states: workingStates, created: window }),
    ),
    "export: a page of the window's rows": list(sq.listQuery({ created: window }, page, 1000)),
    'metrics: unsettled rows near retention': list(
      sq.countQuery({ states: workingStates, created: nearRetention }),
    ),
    'manifest/verify: a page of stored rows': plan(sq.storedPageSql, {
      recording_id: 'r',
      channel: 'combined',
      limit: 1000,
    }),
    'staging sweep: rows holding an upload': list(sq.listQuery({ withUpload: true }, undefined, undefined)),
  };
  for (const { name, index } of hot) {
    test(`${name} uses ${index}`, () => {
      const lines = plans[name];
      assert.ok(
        lines.some((l) => new RegExp(`USING (COVERING )?INDEX (${index})\\b`).test(l)),
        lines.join('\n'),
      );
      assert.ok(!lines.some((l) => /^SCAN jobs$/.test(l)), `a full table scan:\n${lines.join('\n')}`);
    });
  }

  test('claim takes the pending rows in index order: no sort of every due row', () => {
    const lines = plans.claim;
    const at = lines.findIndex((l) => l.includes('INDEX jobs_due'));
    // The line after the pending branch's search is its scan, not a temp b-tree (a sort).
    assert.ok(at >= 0 && !/TEMP B-TREE/.test(lines[at + 1] ?? ''), lines.join('\n'));
  });
});

describe('query plans: postgres', () => {
  let database: TestDatabase;
  let client: pg.Client;
  before(async () => {
    database = await createTestDatabase();
    const ledger = await pgq.openPostgresLedger(database.url);
    try {
      await ledger.upsertDiscovered(rows(2000));
    } finally {
      await ledger.close();
    }
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query('VACUUM ANALYZE jobs');
    // 2 000 rows fit in a few pages, where a Seq Scan is cheapest; price it out
    // so the plan shows which index the query can use at a million rows.
    await client.query('SET enable_seqscan = off');
  });
  after(async () => {
    await client.end();
    await database.drop();
  });

  const explain = async (sql: string, values: unknown[] = []): Promise<string> => {
    const { rows: lines } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, values);
    return lines.map((l) => l['QUERY PLAN']).join('\n');
  };
  const queries: Record<(typeof hot)[number]['name'], () => Promise<string>> = {
    claim: () => explain(pgq.claimSql, ['w', 1, 2, 4, 0]),
    'status: rows per state and reason': () => explain(pgq.countsGroupsSql),
    'status: oldest unsettled row': () => explain(pgq.oldestBacklogSql),
    'status: last error': () => explain(pgq.lastErrorSql),
    "export: the window's unsettled rows, counted": () => {
      const q = pgq.countQuery({ states: workingStates, created: window });
      return explain(q.sql, q.values);
    },
    "export: a page of the window's rows": () => {
      const q = pgq.listQuery({ created: window }, page, 1000);
      return explain(q.sql, q.values);
    },
    'metrics: unsettled rows near retention': () => {
      const q = pgq.countQuery({ states: workingStates, created: nearRetention });
      return explain(q.sql, q.values);
    },
    'manifest/verify: a page of stored rows': () => explain(pgq.storedPageSql, ['r', 'combined', 1000]),
    'staging sweep: rows holding an upload': () => {
      const q = pgq.listQuery({ withUpload: true }, undefined, undefined);
      return explain(q.sql, q.values);
    },
  };
  for (const { name, index } of hot) {
    test(`${name} uses ${index}`, async () => {
      const text = await queries[name]();
      assert.match(
        text,
        new RegExp(
          `(Index Scan|Index Only Scan)( Backward)? using ${index} on jobs|Bitmap Index Scan on ${index}\\b`,
        ),
        text,
      );
      assert.doesNotMatch(text, /Seq Scan on jobs/, text);
    });
  }
});
