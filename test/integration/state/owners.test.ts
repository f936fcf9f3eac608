/**
 * Process identity in the ledger (issue 12, points 1 and 3): two owners
 * with the same host name and pid (two containers running cxrec as pid 1)
 * are told apart by their owner ids and heartbeats; leases are measured on
 * PostgreSQL's clock; a job whose lease cannot be renewed stops.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';

import { CxrecError, isAbortError } from '../../../src/errors.js';
import { newOwner, ownerExpiresAfterMs, type Owner } from '../../../src/owners.js';
import { releaseLeasesOfGoneOwners } from '../../../src/pipeline/owner-leases.js';
import { WorkerPool } from '../../../src/pipeline/workers.js';
import type { JobOutcome } from '../../../src/pipeline/job-outcome.js';
import type { Ledger } from '../../../src/state/ledger.js';
import { openPostgresLedger, openPostgresPool, PostgresLedger } from '../../../src/state/postgres.js';
import { openSqliteLedger } from '../../../src/state/sqlite.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres-database.js';

const log = pino({ level: 'silent' });
const container = (): Owner => ({ ...newOwner(), host: 'same-host', pid: 1, kernel: null });
const meta = (recordingId: string) => ({
  recordingId,
  contactId: `c-${recordingId}`,
  status: 'Available',
  createdDate: '2024-05-01T10:00:00Z',
  durationSeconds: 1,
  direction: 'Inbound',
  agentId: 'a',
  skillName: 's',
});

async function seed(ledger: Ledger, ids: string[]): Promise<void> {
  await ledger.upsertDiscovered(
    ids.map((id) => ({
      recordingId: id,
      channel: 'combined',
      meta: meta(id),
      state: 'pending',
      nextRunAt: 0,
    })),
  );
}

describe('owners in a SQLite ledger', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cxrec-owners-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("releasing gone owners' leases skips a live owner with our host name and pid, takes an expired one's", async () => {
    const path = join(dir, 'ledger.db');
    const ledger = await openSqliteLedger(path);
    try {
      const a = container();
      const b = container();
      await ledger.heartbeat(a);
      await ledger.heartbeat(b);
      await seed(ledger, ['r1', 'r2']);
      const now = Date.now();
      assert.equal((await ledger.claim({ owner: a.id, limit: 2, leaseMs: 60_000, now })).length, 2);
      assert.equal(await releaseLeasesOfGoneOwners(ledger, b, now, log), 0, "a is live: its jobs stay a's");
      assert.equal((await ledger.list({ states: ['downloading'] })).length, 2);
      // a stops beating (SIGKILLed in its container).
      const db = new Database(path);
      db.prepare('UPDATE processes SET heartbeat_at = heartbeat_at - ? WHERE owner_id = ?').run(
        ownerExpiresAfterMs + 1_000,
        a.id,
      );
      db.close();
      assert.equal(await releaseLeasesOfGoneOwners(ledger, b, now, log), 2);
      const rows = await ledger.list({ states: ['pending'] });
      assert.deepEqual(
        rows.map((r) => r.lastErrorCode),
        ['worker_died', 'worker_died'],
      );
      assert.deepEqual(
        (await ledger.listOwners()).map((o) => o.id),
        [b.id],
        'the gone owner is forgotten',
      );
    } finally {
      await ledger.close();
    }
  });
});

describe('owners and leases in a PostgreSQL ledger', () => {
  let database: TestDatabase;
  const ledgers: Ledger[] = [];
  const pools: pg.Pool[] = [];
  before(async () => {
    database = await createTestDatabase();
    ledgers.push(await openPostgresLedger(database.url));
  });
  after(async () => {
    for (const l of ledgers) await l.close();
    for (const p of pools) await p.end().catch(() => undefined);
    await database.drop();
  });

  test('heartbeats are aged on the database clock; a live same-host owner keeps its jobs', async () => {
    const ledger = ledgers[0]!;
    const a = container();
    const b = container();
    await ledger.heartbeat(a);
    await ledger.heartbeat(b);
    await seed(ledger, ['p1']);
    await ledger.claim({ owner: a.id, limit: 1, leaseMs: 60_000, now: Date.now() });
    const rows = await ledger.listOwners();
    assert.ok(rows.every((r) => r.heartbeatAgeMs >= 0 && r.heartbeatAgeMs < 5_000));
    assert.equal(await releaseLeasesOfGoneOwners(ledger, b, Date.now(), log), 0);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query('UPDATE processes SET heartbeat_at = heartbeat_at - $1 WHERE owner_id = $2', [
      ownerExpiresAfterMs + 1_000,
      a.id,
    ]);
    await client.end();
    assert.equal(await releaseLeasesOfGoneOwners(ledger, b, Date.now(), log), 1);
  });

  test("a host whose clock runs 10 minutes ahead does not take a live lease (leases use the database's clock)", async () => {
    const honest = ledgers[0]!;
    const pool = openPostgresPool(database.url, 2);
    pools.push(pool);
    const ahead = (): number => Date.now() + 600_000;
    const skewed = new PostgresLedger(pool, 'skewed', ahead);
    await seed(honest, ['k1']);
    const mine = await honest.claim({ owner: 'honest', limit: 5, leaseMs: 60_000, now: Date.now() });
    assert.ok(mine.some((r) => r.recordingId === 'k1'));
    assert.deepEqual(await skewed.claim({ owner: 'skewed', limit: 5, leaseMs: 60_000, now: ahead() }), []);
    assert.equal(
      await honest.renewLease({ recordingId: 'k1', channel: 'combined' }, 'honest', 60_000, Date.now()),
      true,
    );
  });
});

describe('a job whose lease cannot be renewed stops', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cxrec-lease-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function pool(ledger: Ledger, handle: ConstructorParameters<typeof WorkerPool>[0]['handle']): WorkerPool {
    return new WorkerPool({
      ledger,
      owner: 'w1',
      concurrency: 1,
      leaseMs: 600,
      backoff: { baseMs: 10, capMs: 10, random: () => 0 },
      waiting: { pollSeconds: 60, maxProcessingMinutes: 60 },
      onFallback: () => Promise.resolve(),
      handle,
      log,
      now: () => Date.now(),
    });
  }

  test('renewals that throw past the lease abort the transfer', async () => {
    const ledger = await openSqliteLedger(join(dir, 'renew.db'));
    try {
      await seed(ledger, ['x1']);
      // The ledger goes away for renewals (a PostgreSQL outage).
      ledger.renewLease = () =>
        Promise.reject(new CxrecError('ledger', 'connection refused', { retryable: true }));
      const stop = new AbortController();
      let reason: unknown;
      const p = pool(ledger, async (_job, signal): Promise<JobOutcome> => {
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        reason = signal.reason;
        stop.abort();
        throw signal.reason;
      });
      const guard = setTimeout(() => stop.abort(), 10_000);
      await p.run(stop.signal);
      clearTimeout(guard);
      assert.ok(isAbortError(reason), 'aborted by the pool');
      assert.match((reason as Error).message, /lease could not be renewed/);
    } finally {
      await ledger.close();
    }
  });

  test('a lease taken by another owner refuses the commit', async () => {
    const ledger = await openSqliteLedger(join(dir, 'stolen.db'));
    try {
      await seed(ledger, ['x2']);
      const stop = new AbortController();
      let refused: unknown;
      const p = pool(ledger, async (job, _signal, lease): Promise<JobOutcome> => {
        // Another owner takes the row over (our lease looked expired to it).
        await ledger.claim({ owner: 'w2', limit: 1, leaseMs: 60_000, now: Date.now() + 3_600_000 });
        await lease.confirm().catch((err: unknown) => {
          refused = err;
        });
        stop.abort();
        return { kind: 'retry', error: refused };
      });
      await p.run(stop.signal);
      assert.ok(refused instanceof CxrecError && /lease lost/.test(refused.message));
      assert.equal((await ledger.get({ recordingId: 'x2', channel: 'combined' }))?.leaseOwner, 'w2');
    } finally {
      await ledger.close();
    }
  });
});
