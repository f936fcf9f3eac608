/**
 * The one test suite every `Ledger` must pass (SQLite, PostgreSQL). Each
 * test opens a fresh, empty ledger; `reopen` opens a second handle on the
 * same store, for persistence and two-process tests.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';

import { CxrecError, failureDetail, failureReason } from '../../src/errors.js';
import type {
  Channel,
  DiscoveredJob,
  JobKey,
  JobRow,
  Ledger,
  RecordingMeta,
} from '../../src/state/ledger.js';
import { extensionFor } from '../../src/storage/keys.js';

export interface LedgerFixture {
  ledger: Ledger;
  /** Another handle on the same store (as a second process would open it). */
  reopen(): Promise<Ledger>;
  /** Closes every handle and removes the store. */
  cleanup(): Promise<void>;
}

const T0 = 1_700_000_000_000;
const lease = 30_000;

function meta(recordingId: string, overrides: Partial<RecordingMeta> = {}): RecordingMeta {
  return {
    recordingId,
    contactId: `contact-${recordingId}`,
    status: 'Available',
    createdDate: '2024-05-01T10:00:00Z',
    durationSeconds: 61.5,
    direction: 'Inbound',
    agentId: 'agent-7',
    skillName: 'Support',
    ...overrides,
  };
}

function job(recordingId: string, overrides: Partial<DiscoveredJob> = {}): DiscoveredJob {
  return {
    recordingId,
    channel: 'combined',
    meta: meta(recordingId),
    state: 'pending',
    nextRunAt: T0,
    ...overrides,
  };
}

function key(recordingId: string, channel: Channel = 'combined'): JobKey {
  return { recordingId, channel };
}

const storedInfo = (recordingId: string, sizeBytes = 1000) => ({
  key: `recordings/${recordingId}_combined.wav`,
  sizeBytes,
  md5: 'd41d8cd98f00b204e9800998ecf8427e',
  sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  contentType: 'audio/wav',
  storedAt: T0 + 5000,
});

async function mustGet(ledger: Ledger, k: JobKey): Promise<JobRow> {
  const row = await ledger.get(k);
  assert.ok(row, `row ${k.recordingId}/${k.channel} exists`);
  return row;
}

/** Claims exactly `id` (the only due row) for `owner`. */
async function claimOne(ledger: Ledger, owner: string, now = T0): Promise<JobRow> {
  const rows = await ledger.claim({ owner, limit: 1, leaseMs: lease, now });
  assert.equal(rows.length, 1, 'one row claimed');
  return rows[0]!;
}

async function collect(rows: AsyncIterable<JobRow>): Promise<JobRow[]> {
  const out: JobRow[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

export function ledgerSuite(name: string, open: () => Promise<LedgerFixture>): void {
  describe(`ledger contract: ${name}`, () => {
    let fx: LedgerFixture;
    let ledger: Ledger;

    beforeEach(async () => {
      fx = await open();
      ledger = fx.ledger;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    describe('upsertDiscovered', () => {
      test('inserts one row per recording and channel with every field', async () => {
        const before = Date.now();
        const result = await ledger.upsertDiscovered([
          job('r1'),
          job('r1', { channel: 'agent' }),
          job('r2', {
            state: 'waiting',
            meta: { recordingId: 'r2', status: 'Processing', createdDate: '2024-05-01T09:00:00Z' },
            nextRunAt: T0 + 30_000,
          }),
        ]);
        assert.deepEqual(result, { inserted: 3, updated: 0 });

        const r1 = await mustGet(ledger, key('r1'));
        assert.equal(r1.updatedAt >= before, true);
        assert.equal(r1.firstSeenAt >= before, true);
        assert.deepEqual(r1, {
          recordingId: 'r1',
          channel: 'combined',
          state: 'pending',
          reason: null,
          meta: meta('r1'),
          attempts: 0,
          nextRunAt: T0,
          firstSeenAt: r1.firstSeenAt,
          leaseOwner: null,
          leaseExpiresAt: null,
          lastErrorCode: null,
          lastErrorMessage: null,
          uploadToken: null,
          uploadBytes: null,
          stored: null,
          updatedAt: r1.updatedAt,
        });
        assert.equal((await mustGet(ledger, key('r1', 'agent'))).channel, 'agent');
        const r2 = await mustGet(ledger, key('r2'));
        // Optional metadata that was absent stays absent.
        assert.deepEqual(r2.meta, {
          recordingId: 'r2',
          status: 'Processing',
          createdDate: '2024-05-01T09:00:00Z',
        });
        assert.equal(r2.state, 'waiting');
        assert.equal(r2.nextRunAt, T0 + 30_000);
        assert.equal(await ledger.get(key('r3')), undefined);
      });

      test('inserts rows discovery already settled, with their reason', async () => {
        await ledger.upsertDiscovered([
          job('old', { state: 'out_of_retention', reason: 'older than 70 % of retention' }),
          job('bad', { state: 'failed_processing', reason: 'transcoding failed' }),
        ]);
        const old = await mustGet(ledger, key('old'));
        assert.equal(old.state, 'out_of_retention');
        assert.equal(old.reason, 'older than 70 % of retention');
        assert.equal((await mustGet(ledger, key('bad'))).reason, 'transcoding failed');
        assert.deepEqual(await ledger.claim({ owner: 'w', limit: 10, leaseMs: lease, now: T0 + 1e9 }), []);
      });

      test("keeps a platform master contact's fields: every leg, addresses, skill id, agent name", async () => {
        const contact = meta('4567890123', {
          contactId: '4567890123',
          status: 'Completed',
          contactIds: ['4567890123', '4567890200'],
          fromAddress: '+15550100',
          toAddress: '+15550199',
          skillId: '88',
          agentName: 'Ada Lovelace',
        });
        await ledger.upsertDiscovered([job('4567890123', { meta: contact })]);
        assert.deepEqual((await mustGet(ledger, key('4567890123'))).meta, contact);
        // A later listing that found a third leg refreshes the list.
        const more = { ...contact, contactIds: [...contact.contactIds!, '4567890300'] };
        await ledger.upsertDiscovered([job('4567890123', { meta: more })]);
        assert.deepEqual((await mustGet(ledger, key('4567890123'))).meta.contactIds, more.contactIds);
      });

      test('refreshes a waiting row: new metadata, state and nextRunAt, first seen kept', async () => {
        await ledger.upsertDiscovered([
          job('r1', { state: 'waiting', meta: meta('r1', { status: 'Processing' }), nextRunAt: T0 + 30_000 }),
        ]);
        const first = await mustGet(ledger, key('r1'));
        const result = await ledger.upsertDiscovered([
          job('r1', {
            state: 'pending',
            meta: meta('r1', { status: 'Available', durationSeconds: 99 }),
            nextRunAt: T0 + 1,
          }),
        ]);
        assert.deepEqual(result, { inserted: 0, updated: 1 });
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'pending');
        assert.equal(row.meta.status, 'Available');
        assert.equal(row.meta.durationSeconds, 99);
        assert.equal(row.nextRunAt, T0 + 1);
        assert.equal(row.firstSeenAt, first.firstSeenAt);
      });

      test('a waiting row takes the new nextRunAt; a pending row keeps its own (retry backoff)', async () => {
        await ledger.upsertDiscovered([
          job('w', { state: 'waiting', nextRunAt: T0 + 30_000 }),
          job('p', { state: 'pending', nextRunAt: T0 }),
        ]);
        const claimed = await claimOne(ledger, 'w1');
        assert.equal(claimed.recordingId, 'p');
        assert.ok(
          await ledger.defer(key('p'), 'w1', {
            state: 'pending',
            nextRunAt: T0 + 60_000,
            countAttempt: true,
          }),
        );

        await ledger.upsertDiscovered([
          job('w', { state: 'waiting', nextRunAt: T0 + 90_000 }),
          job('p', { state: 'pending', nextRunAt: T0 + 10 }),
        ]);
        assert.equal((await mustGet(ledger, key('w'))).nextRunAt, T0 + 90_000);
        const p = await mustGet(ledger, key('p'));
        assert.equal(p.nextRunAt, T0 + 60_000);
        assert.equal(p.attempts, 1, 'attempts survive a refresh');
      });

      test('a working row can be settled by discovery (e.g. transcoding failed)', async () => {
        await ledger.upsertDiscovered([
          job('r1', { state: 'waiting', meta: meta('r1', { status: 'Processing' }) }),
        ]);
        await ledger.upsertDiscovered([
          job('r1', {
            state: 'failed_processing',
            reason: 'transcoding failed',
            meta: meta('r1', { status: 'Failed' }),
          }),
        ]);
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'failed_processing');
        assert.equal(row.reason, 'transcoding failed');
        assert.equal(row.meta.status, 'Failed');
      });

      test('never touches a final row', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(await ledger.finish(key('r1'), 'w1', { state: 'stored', stored: storedInfo('r1') }));
        const stored = await mustGet(ledger, key('r1'));

        const result = await ledger.upsertDiscovered([
          job('r1', {
            state: 'waiting',
            meta: meta('r1', { status: 'Processing', agentId: 'someone-else' }),
            nextRunAt: T0 + 5,
          }),
        ]);
        assert.deepEqual(result, { inserted: 0, updated: 0 });
        assert.deepEqual(await mustGet(ledger, key('r1')), stored);
      });

      test('keeps the state and lease of a leased row but refreshes its metadata', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        const claimed = await claimOne(ledger, 'w1');
        const result = await ledger.upsertDiscovered([
          job('r1', { state: 'waiting', meta: meta('r1', { skillName: 'Sales' }), nextRunAt: T0 + 99 }),
        ]);
        assert.deepEqual(result, { inserted: 0, updated: 1 });
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'downloading');
        assert.equal(row.leaseOwner, 'w1');
        assert.equal(row.leaseExpiresAt, claimed.leaseExpiresAt);
        assert.equal(row.nextRunAt, T0);
        assert.equal(row.meta.skillName, 'Sales');
        assert.ok(
          await ledger.finish(key('r1'), 'w1', { state: 'stored', stored: storedInfo('r1') }),
          'holder still holds it',
        );
      });

      test('the same key twice in one batch: the last one wins', async () => {
        const result = await ledger.upsertDiscovered([
          job('r1', { meta: meta('r1', { skillName: 'first' }) }),
          job('r1', { meta: meta('r1', { skillName: 'last' }) }),
        ]);
        assert.deepEqual(result, { inserted: 1, updated: 0 });
        assert.equal((await mustGet(ledger, key('r1'))).meta.skillName, 'last');
      });

      test('an empty batch is a no-op', async () => {
        assert.deepEqual(await ledger.upsertDiscovered([]), { inserted: 0, updated: 0 });
      });

      test('100 000 rows in one call', async () => {
        const jobs = Array.from({ length: 100_000 }, (_, i) =>
          job(`bulk-${String(i).padStart(6, '0')}`, { nextRunAt: T0 + i }),
        );
        assert.deepEqual(await ledger.upsertDiscovered(jobs), { inserted: 100_000, updated: 0 });
        const counts = await ledger.counts();
        assert.equal(counts.backlog, 100_000);
        assert.equal(counts.byState.pending, 100_000);
        const first = await ledger.claim({ owner: 'w', limit: 2, leaseMs: lease, now: T0 + 1e9 });
        assert.deepEqual(
          first.map((r) => r.recordingId),
          ['bulk-000000', 'bulk-000001'],
        );
      });
    });

    describe('claim', () => {
      test('leases due pending rows, oldest nextRunAt first, up to the limit', async () => {
        await ledger.upsertDiscovered([
          job('late', { nextRunAt: T0 + 3 }),
          job('first', { nextRunAt: T0 + 1 }),
          job('second', { nextRunAt: T0 + 2 }),
          job('future', { nextRunAt: T0 + 60_000 }),
          job('waiting', { state: 'waiting', nextRunAt: T0 }),
        ]);
        const rows = await ledger.claim({ owner: 'w1', limit: 2, leaseMs: lease, now: T0 + 10 });
        assert.deepEqual(
          rows.map((r) => r.recordingId),
          ['first', 'second'],
        );
        for (const r of rows) {
          assert.equal(r.state, 'downloading');
          assert.equal(r.leaseOwner, 'w1');
          assert.equal(r.leaseExpiresAt, T0 + 10 + lease);
          assert.equal(r.attempts, 0);
        }
        assert.deepEqual(await mustGet(ledger, key('first')), rows[0]);

        const rest = await ledger.claim({ owner: 'w2', limit: 10, leaseMs: lease, now: T0 + 10 });
        assert.deepEqual(
          rest.map((r) => r.recordingId),
          ['late'],
          'live leases, future and waiting rows are not claimed',
        );
        assert.deepEqual(await ledger.claim({ owner: 'w3', limit: 0, leaseMs: lease, now: T0 + 1e9 }), []);
      });

      test('ties on nextRunAt are broken by recording id and channel', async () => {
        await ledger.upsertDiscovered([job('b'), job('a', { channel: 'caller' }), job('a')]);
        const rows = await ledger.claim({ owner: 'w', limit: 10, leaseMs: lease, now: T0 });
        assert.deepEqual(
          rows.map((r) => `${r.recordingId}/${r.channel}`),
          ['a/caller', 'a/combined', 'b/combined'],
        );
      });

      test('an expired lease is taken over by another owner and counts an attempt', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'dead');
        assert.deepEqual(
          await ledger.claim({ owner: 'w2', limit: 5, leaseMs: lease, now: T0 + lease - 1 }),
          [],
        );
        const taken = await claimOne(ledger, 'w2', T0 + lease);
        assert.equal(taken.leaseOwner, 'w2');
        assert.equal(taken.leaseExpiresAt, T0 + 2 * lease);
        assert.equal(taken.attempts, 1);
      });

      test('a stale owner cannot finish, defer, renew or record an upload', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'stale');
        await claimOne(ledger, 'fresh', T0 + lease + 1);

        assert.equal(
          await ledger.finish(key('r1'), 'stale', { state: 'stored', stored: storedInfo('r1') }),
          false,
        );
        assert.equal(
          await ledger.defer(key('r1'), 'stale', { state: 'pending', nextRunAt: T0, countAttempt: true }),
          false,
        );
        assert.equal(await ledger.renewLease(key('r1'), 'stale', lease, T0 + lease + 2), false);
        assert.equal(await ledger.setUpload(key('r1'), 'stale', { token: 'upload-1', bytes: 0 }), false);

        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'downloading');
        assert.equal(row.leaseOwner, 'fresh');
        assert.equal(row.uploadToken, null);
        assert.ok(await ledger.finish(key('r1'), 'fresh', { state: 'stored', stored: storedInfo('r1') }));
      });

      test('two handles claiming at once never share a row', async () => {
        const other = await fx.reopen();
        await ledger.upsertDiscovered(
          Array.from({ length: 200 }, (_, i) => job(`r${i}`, { nextRunAt: T0 + i })),
        );
        const batches = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 ? other : ledger).claim({ owner: `w${i}`, limit: 25, leaseMs: lease, now: T0 + 1000 }),
          ),
        );
        const ids = batches.flat().map((r) => r.recordingId);
        assert.equal(ids.length, 200);
        assert.equal(new Set(ids).size, 200);
      });
    });

    describe('renewLease', () => {
      test('extends a held lease so nobody takes it over', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(await ledger.renewLease(key('r1'), 'w1', lease, T0 + lease - 1));
        assert.equal((await mustGet(ledger, key('r1'))).leaseExpiresAt, T0 + 2 * lease - 1);
        assert.deepEqual(
          await ledger.claim({ owner: 'w2', limit: 1, leaseMs: lease, now: T0 + lease + 1 }),
          [],
        );
      });

      test('refuses a row that is not leased', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        assert.equal(await ledger.renewLease(key('r1'), 'w1', lease, T0), false);
        assert.equal(await ledger.renewLease(key('missing'), 'w1', lease, T0), false);
      });
    });

    describe('finish', () => {
      test('stores the object, releases the lease and forgets the upload token', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(await ledger.setUpload(key('r1'), 'w1', { token: 'upload-1', bytes: 0 }));
        assert.ok(await ledger.finish(key('r1'), 'w1', { state: 'stored', stored: storedInfo('r1') }));
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'stored');
        assert.equal(row.reason, null);
        assert.deepEqual(row.stored, storedInfo('r1'));
        assert.equal(row.leaseOwner, null);
        assert.equal(row.leaseExpiresAt, null);
        assert.equal(row.uploadToken, null);
        assert.equal(row.uploadBytes, null);
        assert.equal(
          await ledger.finish(key('r1'), 'w1', { state: 'failed' }),
          false,
          'a final row stays final',
        );
      });

      test('records a failure with its reason and error, keeping a staged upload to clean up', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(await ledger.setUpload(key('r1'), 'w1', { token: 'upload-1', bytes: 4096 }));
        assert.ok(
          await ledger.finish(key('r1'), 'w1', {
            state: 'failed',
            reason: 'download failed after 8 attempts',
            errorCode: 'network',
            errorMessage: 'socket hang up',
          }),
        );
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'failed');
        assert.equal(row.reason, 'download failed after 8 attempts');
        assert.equal(row.lastErrorCode, 'network');
        assert.equal(row.lastErrorMessage, 'socket hang up');
        assert.equal(row.stored, null);
        assert.equal(row.uploadToken, 'upload-1');
        assert.equal(row.uploadBytes, 4096);
      });

      test('refuses a row nobody leased, and a missing row', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        assert.equal(
          await ledger.finish(key('r1'), 'w1', { state: 'stored', stored: storedInfo('r1') }),
          false,
        );
        assert.equal(await ledger.finish(key('nope'), 'w1', { state: 'failed' }), false);
        assert.equal((await mustGet(ledger, key('r1'))).state, 'pending');
      });
    });

    describe('defer', () => {
      test('back to pending after a transient fault: attempts + 1, error kept, lease released', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(
          await ledger.defer(key('r1'), 'w1', {
            state: 'pending',
            nextRunAt: T0 + 4000,
            countAttempt: true,
            errorCode: 'http_status',
            errorMessage: 'HTTP 503',
          }),
        );
        let row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'pending');
        assert.equal(row.attempts, 1);
        assert.equal(row.nextRunAt, T0 + 4000);
        assert.equal(row.leaseOwner, null);
        assert.equal(row.leaseExpiresAt, null);
        assert.equal(row.lastErrorCode, 'http_status');
        assert.equal(row.lastErrorMessage, 'HTTP 503');

        assert.deepEqual(await ledger.claim({ owner: 'w2', limit: 1, leaseMs: lease, now: T0 + 3999 }), []);
        await claimOne(ledger, 'w2', T0 + 4000);
        assert.ok(
          await ledger.defer(key('r1'), 'w2', { state: 'pending', nextRunAt: T0 + 9000, countAttempt: true }),
        );
        row = await mustGet(ledger, key('r1'));
        assert.equal(row.attempts, 2);
        assert.equal(row.lastErrorCode, 'http_status', 'an error is kept until the next one');
      });

      test('to waiting without counting an attempt, with the status seen', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(
          await ledger.defer(key('r1'), 'w1', {
            state: 'waiting',
            nextRunAt: T0 + 30_000,
            countAttempt: false,
            status: 'Processing',
          }),
        );
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.state, 'waiting');
        assert.equal(row.attempts, 0);
        assert.equal(row.meta.status, 'Processing');
        assert.equal(row.lastErrorCode, null);
        assert.deepEqual(
          await ledger.claim({ owner: 'w2', limit: 1, leaseMs: lease, now: T0 + 1e9 }),
          [],
          'waiting is not claimed',
        );
      });

      test('keeps a parked upload for the next claim to resume', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(await ledger.setUpload(key('r1'), 'w1', { token: 'upload-1', bytes: 8 << 20 }));
        assert.ok(
          await ledger.defer(key('r1'), 'w1', { state: 'pending', nextRunAt: T0, countAttempt: true }),
        );
        const again = await claimOne(ledger, 'w2');
        assert.equal(again.uploadToken, 'upload-1');
        assert.equal(again.uploadBytes, 8 << 20);
      });
    });

    describe('uploads', () => {
      test('setUpload records and clears the staged upload of a leased row', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        assert.equal(await ledger.setUpload(key('r1'), 'w1', { token: 't', bytes: 0 }), false, 'not leased');
        await claimOne(ledger, 'w1');
        assert.ok(await ledger.setUpload(key('r1'), 'w1', { token: 't', bytes: 10 }));
        assert.equal((await mustGet(ledger, key('r1'))).uploadToken, 't');
        assert.ok(await ledger.setUpload(key('r1'), 'w1', null));
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.uploadToken, null);
        assert.equal(row.uploadBytes, null);
      });

      test('listAbandonedUploads finds tokens no live lease holds', async () => {
        await ledger.upsertDiscovered([
          job('dead', { nextRunAt: T0 }),
          job('failed', { nextRunAt: T0 + 1 }),
          job('parked', { nextRunAt: T0 + 2 }),
          job('live', { nextRunAt: T0 + 3 }),
          job('plain', { nextRunAt: T0 + 4 }),
        ]);
        for (const [i, id] of ['dead', 'failed', 'parked', 'live'].entries()) {
          // 'live' holds a long lease; the others expire at T0 + lease.
          const leaseMs = id === 'live' ? 10 * lease : lease;
          const [row] = await ledger.claim({ owner: `w-${id}`, limit: 1, leaseMs, now: T0 + i });
          assert.equal(row?.recordingId, id);
          assert.ok(await ledger.setUpload(key(id), `w-${id}`, { token: `tok-${id}`, bytes: 1 }));
        }
        assert.ok(
          await ledger.defer(key('parked'), 'w-parked', {
            state: 'pending',
            nextRunAt: T0 + 1e6,
            countAttempt: false,
          }),
        );
        assert.ok(await ledger.finish(key('failed'), 'w-failed', { state: 'failed', reason: 'gave up' }));

        assert.deepEqual(
          (await ledger.listAbandonedUploads(T0 + lease)).map((r) => [r.recordingId, r.uploadToken]),
          [
            ['dead', 'tok-dead'],
            ['failed', 'tok-failed'],
            ['parked', 'tok-parked'],
          ],
        );
        assert.deepEqual(
          (await ledger.listAbandonedUploads(T0 + 1)).map((r) => r.recordingId),
          ['failed', 'parked'],
          'before expiry only rows without a lease',
        );
      });

      test('clearAbandonedUpload clears only the same token, and never under a live lease', async () => {
        await ledger.upsertDiscovered([job('r1')]);
        await claimOne(ledger, 'w1');
        assert.ok(await ledger.setUpload(key('r1'), 'w1', { token: 'tok', bytes: 1 }));
        assert.equal(await ledger.clearAbandonedUpload(key('r1'), 'tok', T0 + 1), false, 'lease still live');
        assert.ok(await ledger.finish(key('r1'), 'w1', { state: 'failed', reason: 'gave up' }));
        assert.equal(await ledger.clearAbandonedUpload(key('r1'), 'other', T0 + 1), false, 'another token');
        assert.ok(await ledger.clearAbandonedUpload(key('r1'), 'tok', T0 + 1));
        const row = await mustGet(ledger, key('r1'));
        assert.equal(row.uploadToken, null);
        assert.equal(row.uploadBytes, null);
        assert.equal(row.state, 'failed');
        assert.deepEqual(await ledger.listAbandonedUploads(T0 + 1), []);
      });
    });

    describe('markAvailable', () => {
      test('moves the waiting rows of those recordings to pending now', async () => {
        await ledger.upsertDiscovered([
          job('r1', { state: 'waiting', meta: meta('r1', { status: 'Processing' }), nextRunAt: T0 + 1e6 }),
          job('r1', {
            channel: 'agent',
            state: 'waiting',
            meta: meta('r1', { status: 'Processing' }),
            nextRunAt: T0 + 1e6,
          }),
          job('r2', { state: 'waiting', nextRunAt: T0 + 1e6 }),
          job('r3', { state: 'pending', nextRunAt: T0 + 5 }),
        ]);
        assert.equal(await ledger.markAvailable(['r1', 'r3', 'unknown'], T0 + 100), 2);
        for (const ch of ['combined', 'agent'] as const) {
          const row = await mustGet(ledger, key('r1', ch));
          assert.equal(row.state, 'pending');
          assert.equal(row.nextRunAt, T0 + 100);
          assert.equal(row.meta.status, 'Available');
        }
        assert.equal((await mustGet(ledger, key('r2'))).state, 'waiting');
        assert.equal((await mustGet(ledger, key('r3'))).nextRunAt, T0 + 5, 'pending rows are left alone');
        assert.equal(await ledger.markAvailable([], T0), 0);
      });
    });

    describe('list', () => {
      test('filters by state and due time, ordered by createdDate, with a limit', async () => {
        await ledger.upsertDiscovered([
          job('c', {
            state: 'waiting',
            meta: meta('c', { createdDate: '2024-05-01T10:00:03Z' }),
            nextRunAt: T0 + 10,
          }),
          job('a', {
            state: 'waiting',
            meta: meta('a', { createdDate: '2024-05-01T10:00:01Z' }),
            nextRunAt: T0 + 1000,
          }),
          job('b', {
            state: 'pending',
            meta: meta('b', { createdDate: '2024-05-01T10:00:02Z' }),
            nextRunAt: T0,
          }),
          job('d', {
            state: 'out_of_retention',
            reason: 'old',
            meta: meta('d', { createdDate: '2024-01-01T00:00:00Z' }),
          }),
        ]);
        const ids = (rows: JobRow[]) => rows.map((r) => r.recordingId);
        assert.deepEqual(ids(await ledger.list({})), ['d', 'a', 'b', 'c']);
        assert.deepEqual(ids(await ledger.list({ states: ['waiting'] })), ['a', 'c']);
        assert.deepEqual(ids(await ledger.list({ states: ['waiting'], dueBefore: T0 + 10 })), ['c']);
        assert.deepEqual(ids(await ledger.list({ states: ['waiting', 'pending'], limit: 2 })), ['a', 'b']);
        assert.deepEqual(ids(await ledger.list({ dueBefore: T0 })), ['d', 'b']);
        assert.deepEqual(await ledger.list({ states: [] }), []);
      });

      test('a createdDate window: from inclusive, to exclusive, combined with the other filters', async () => {
        const at = (id: string, createdDate: string, state: DiscoveredJob['state'] = 'pending') =>
          job(id, {
            state,
            meta: meta(id, { createdDate }),
            ...(state === 'out_of_retention' ? { reason: 'old' } : {}),
          });
        await ledger.upsertDiscovered([
          at('before', '2024-05-01T09:59:59Z'),
          at('first', '2024-05-01T10:00:00Z'),
          at('mid', '2024-05-01T10:30:00Z', 'waiting'),
          at('last', '2024-05-01T10:59:59Z'),
          at('end', '2024-05-01T11:00:00Z'),
          at('next-day', '2024-05-02T10:30:00Z'),
          at('old', '2024-05-01T10:15:00Z', 'out_of_retention'),
        ]);
        const ids = (rows: JobRow[]) => rows.map((r) => r.recordingId);
        // Bounds as `Date.toISOString` writes them (with milliseconds), as `export` passes them.
        const hour = { from: '2024-05-01T10:00:00.000Z', to: '2024-05-01T11:00:00.000Z' };
        assert.deepEqual(ids(await ledger.list({ created: hour })), ['first', 'old', 'mid', 'last']);
        assert.deepEqual(ids(await ledger.list({ created: hour, states: ['waiting', 'pending'] })), [
          'first',
          'mid',
          'last',
        ]);
        assert.deepEqual(ids(await ledger.list({ created: hour, limit: 2 })), ['first', 'old']);
        // Bounds inside a second: a recording at 10:00:00 is before 10:00:00.500, one at 10:59:59 before 10:59:59.5.
        assert.deepEqual(
          ids(
            await ledger.list({
              created: { from: '2024-05-01T10:00:00.500Z', to: '2024-05-01T10:59:59.500Z' },
            }),
          ),
          ['old', 'mid', 'last'],
        );
        // Bounds in another zone name the same instants.
        assert.deepEqual(
          ids(
            await ledger.list({
              created: { from: '2024-05-01T12:00:00+02:00', to: '2024-05-01T12:15:00+02:00' },
            }),
          ),
          ['first'],
        );
        assert.deepEqual(
          await ledger.list({ created: { from: '2024-05-01T10:00:00Z', to: '2024-05-01T10:00:00Z' } }),
          [],
        );
        assert.deepEqual(
          ids(await ledger.list({ created: { from: '2024-05-02T00:00:00Z', to: '2024-05-03T00:00:00Z' } })),
          ['next-day'],
        );
      });
    });

    describe('iterate and countRows', () => {
      test('iterate yields what list does, in list order, across keyset pages', async () => {
        // 2 500 rows over 7 seconds: many rows share a createdDate, so pages break inside a second.
        const jobs = Array.from({ length: 2500 }, (_, i) => {
          const id = `it${String((i * 7919) % 2500).padStart(5, '0')}`;
          return job(id, {
            state: i % 5 === 0 ? 'waiting' : 'pending',
            meta: meta(id, { createdDate: `2024-05-01T10:00:0${i % 7}Z` }),
          });
        });
        await ledger.upsertDiscovered([
          ...jobs,
          job('outside', { meta: meta('outside', { createdDate: '2024-06-01T00:00:00Z' }) }),
        ]);
        const keys = (rows: JobRow[]) => rows.map((r) => `${r.meta.createdDate} ${r.recordingId}`);
        const window = { from: '2024-05-01T10:00:00Z', to: '2024-05-01T10:00:07Z' };
        const all = await collect(ledger.iterate({ created: window }));
        assert.equal(all.length, 2500);
        assert.deepEqual(keys(all), keys(await ledger.list({ created: window })));
        const waiting = await collect(ledger.iterate({ created: window, states: ['waiting'] }));
        assert.deepEqual(keys(waiting), keys(await ledger.list({ created: window, states: ['waiting'] })));
        assert.equal(waiting.length, 500);
        assert.deepEqual(await collect(ledger.iterate({ states: [] })), []);
      });

      test('countRows counts per state and reason within the filter', async () => {
        await ledger.upsertDiscovered([
          job('p1'),
          job('p2', { meta: meta('p2', { createdDate: '2024-05-02T00:00:00Z' }) }),
          job('w1', { state: 'waiting' }),
          job('o1', { state: 'out_of_retention', reason: 'old' }),
          job('o2', { state: 'out_of_retention', reason: 'old' }),
          job('f1', { state: 'failed_processing', reason: 'transcoding failed' }),
        ]);
        assert.deepEqual(await ledger.countRows({}), {
          byState: { pending: 2, waiting: 1, out_of_retention: 2, failed_processing: 1 },
          byReason: { out_of_retention: { old: 2 }, failed_processing: { 'transcoding failed': 1 } },
        });
        const day = { from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z' };
        assert.deepEqual(await ledger.countRows({ created: day, states: ['pending', 'waiting'] }), {
          byState: { pending: 1, waiting: 1 },
          byReason: {},
        });
        assert.deepEqual(await ledger.countRows({ states: [] }), { byState: {}, byReason: {} });
      });

      test('list withUpload: only rows holding a staged upload', async () => {
        await ledger.upsertDiscovered([job('u1'), job('u2')]);
        const [r] = await ledger.claim({ owner: 'w', limit: 1, leaseMs: lease, now: T0 });
        assert.ok(r);
        assert.ok(await ledger.setUpload(r, 'w', { token: 'tok', bytes: 0 }));
        const rows = await ledger.list({ withUpload: true });
        assert.deepEqual(
          rows.map((x) => [x.recordingId, x.uploadToken]),
          [[r.recordingId, 'tok']],
        );
      });
    });

    describe('listStored', () => {
      test('yields every stored row by recording id and channel, across pages', async () => {
        const n = 2500;
        const ids = Array.from({ length: n }, (_, i) => `s${String(i).padStart(5, '0')}`);
        await ledger.upsertDiscovered([
          ...ids.map((id) => job(id)).reverse(),
          job('s00000', { channel: 'agent' }),
          job('zz-not-stored'),
        ]);
        const claimed = await ledger.claim({ owner: 'w', limit: n + 1, leaseMs: lease, now: T0 });
        for (const r of claimed) {
          assert.ok(await ledger.finish(r, 'w', { state: 'stored', stored: storedInfo(r.recordingId) }));
        }
        const stored = await collect(ledger.listStored());
        assert.equal(stored.length, n + 1);
        assert.deepEqual(
          stored.slice(0, 3).map((r) => `${r.recordingId}/${r.channel}`),
          ['s00000/agent', 's00000/combined', 's00001/combined'],
        );
        assert.equal(stored.at(-1)!.recordingId, ids.at(-1));
        assert.ok(stored.every((r) => r.state === 'stored' && r.stored !== null));
      });

      test('yields nothing from an empty ledger', async () => {
        assert.deepEqual(await collect(ledger.listStored()), []);
      });
    });

    describe('counts', () => {
      test('an empty ledger', async () => {
        assert.deepEqual(await ledger.counts(), {
          byState: {},
          byReason: {},
          backlog: 0,
          oldestBacklogCreatedDate: null,
          lastError: null,
          storedBytes: 0,
        });
      });

      test('by state and reason, backlog, last error and stored bytes', async () => {
        await ledger.upsertDiscovered([
          job('s1', { meta: meta('s1', { createdDate: '2024-05-01T00:00:01Z' }) }),
          job('s2', { meta: meta('s2', { createdDate: '2024-05-01T00:00:02Z' }) }),
          job('f1', { meta: meta('f1', { createdDate: '2024-05-01T00:00:03Z' }) }),
          job('f2', { meta: meta('f2', { createdDate: '2024-05-01T00:00:04Z' }) }),
          job('w1', {
            state: 'waiting',
            meta: meta('w1', { createdDate: '2024-05-01T00:00:06Z' }),
            nextRunAt: T0 + 1e6,
          }),
          job('p1', { meta: meta('p1', { createdDate: '2024-05-01T00:00:05Z' }), nextRunAt: T0 + 1e6 }),
          job('o1', {
            state: 'out_of_retention',
            reason: 'older than 70 % of retention',
            meta: meta('o1', { createdDate: '2023-01-01T00:00:00Z' }),
          }),
        ]);
        const claimed = await ledger.claim({ owner: 'w', limit: 10, leaseMs: lease, now: T0 });
        assert.equal(claimed.length, 4);
        assert.ok(await ledger.finish(key('s1'), 'w', { state: 'stored', stored: storedInfo('s1', 1000) }));
        assert.ok(await ledger.finish(key('s2'), 'w', { state: 'stored', stored: storedInfo('s2', 234) }));
        assert.ok(
          await ledger.finish(key('f1'), 'w', {
            state: 'failed',
            reason: 'download failed after 8 attempts',
            errorCode: 'network',
            errorMessage: 'first',
          }),
        );
        await new Promise((r) => setTimeout(r, 5)); // last errors are ordered by wall clock
        assert.ok(
          await ledger.finish(key('f2'), 'w', {
            state: 'failed',
            reason: 'download failed after 8 attempts',
            detail: 'host=media.evil.example',
            errorCode: 'media_host_refused',
            errorMessage: 'second',
          }),
        );
        const counts = await ledger.counts();
        assert.deepEqual(counts.byState, {
          stored: 2,
          failed: 2,
          waiting: 1,
          pending: 1,
          out_of_retention: 1,
        });
        assert.deepEqual(counts.byReason, {
          failed: { 'download failed after 8 attempts': 2 },
          out_of_retention: { 'older than 70 % of retention': 1 },
        });
        assert.equal(counts.backlog, 2);
        assert.equal(counts.oldestBacklogCreatedDate, '2024-05-01T00:00:05Z');
        assert.equal(counts.storedBytes, 1234);
        assert.ok(counts.lastError);
        assert.deepEqual(
          { ...counts.lastError, at: 0 },
          {
            recordingId: 'f2',
            channel: 'combined',
            code: 'media_host_refused',
            message: 'second',
            detail: 'host=media.evil.example',
            at: 0,
          },
        );
        assert.ok(Math.abs(counts.lastError.at - Date.now()) < 60_000);
      });

      test('rows failing with different sizes, hosts and types form few reason groups, details kept', async () => {
        const errors: Error[] = [];
        for (let i = 0; i < 30; i++) {
          errors.push(
            new CxrecError(
              'media_host_refused',
              'media URL points to a host CXREC_MEDIA_HOSTS does not allow',
              {
                context: { host: `media-${i}.evil.example`, recordingId: `m${i}` },
              },
            ),
            new CxrecError('integrity', `S3 stored bytes whose md5 ${String(i).padStart(32, 'a')} differs`),
            new Error(`connect to media-${i}.example.com failed after ${10_000 + i} bytes`),
          );
          try {
            extensionFor(`audio/x-odd-${i}`);
          } catch (err) {
            errors.push(err as Error);
          }
        }
        await ledger.upsertDiscovered(errors.map((_e, i) => job(`x${i}`)));
        const claimed = await ledger.claim({ owner: 'w', limit: errors.length, leaseMs: lease, now: T0 });
        assert.equal(claimed.length, errors.length);
        for (const [i, err] of errors.entries()) {
          assert.ok(
            await ledger.finish(key(`x${i}`), 'w', {
              state: 'failed',
              reason: failureReason(err),
              detail: failureDetail(err),
              errorCode: 'x',
              errorMessage: err.message,
            }),
          );
        }
        const counts = await ledger.counts();
        assert.equal(counts.byState.failed, errors.length);
        assert.equal(Object.keys(counts.byReason.failed ?? {}).length, 4, JSON.stringify(counts.byReason));
        // The specifics are kept beside the reason (which row is last within one millisecond is open).
        assert.match(counts.lastError?.detail ?? '', /evil\.example|md5|example\.com|odd-/);
      });
    });

    describe('overview and find (the status page)', () => {
      test('backlog by age, stored per minute, recent failures newest first', async () => {
        const now = Date.parse('2024-05-02T00:00:00Z');
        await ledger.upsertDiscovered([
          job('old', {
            state: 'waiting',
            meta: meta('old', { createdDate: '2024-04-01T00:00:00Z' }),
            nextRunAt: T0 + 1e9,
          }),
          job('day', { meta: meta('day', { createdDate: '2024-05-01T12:00:00Z' }), nextRunAt: T0 + 1e9 }),
          job('new', { meta: meta('new', { createdDate: '2024-05-01T23:59:30Z' }), nextRunAt: T0 + 1e9 }),
          job('s1'),
          job('f1'),
          job('f2'),
        ]);
        const claimed = await ledger.claim({ owner: 'w', limit: 10, leaseMs: lease, now: T0 });
        assert.equal(claimed.length, 3);
        assert.ok(await ledger.finish(key('s1'), 'w', { state: 'stored', stored: storedInfo('s1') }));
        assert.ok(await ledger.finish(key('f1'), 'w', { state: 'failed', reason: 'refused' }));
        await new Promise((r) => setTimeout(r, 5)); // failures are ordered by when they were written
        assert.ok(await ledger.finish(key('f2'), 'w', { state: 'failed', reason: 'gave up' }));
        const o = await ledger.overview({
          now,
          since: T0,
          backlogAgesMs: [0, 60_000, 86_400_000, 7 * 86_400_000],
          failures: 10,
        });
        assert.deepEqual(o.backlogOlderThan, [3, 2, 1, 1]);
        assert.deepEqual(o.storedPerMinute, [{ minute: Math.floor((T0 + 5000) / 60_000), count: 1 }]);
        assert.deepEqual(o.apiGrantsPerMinute, []);
        assert.deepEqual(
          o.recentFailures.map((r) => [r.recordingId, r.reason]),
          [
            ['f2', 'gave up'],
            ['f1', 'refused'],
          ],
        );
        const later = await ledger.overview({ now, since: T0 + 60_000, backlogAgesMs: [], failures: 1 });
        assert.deepEqual(later.storedPerMinute, []);
        assert.deepEqual(later.backlogOlderThan, []);
        assert.equal(later.recentFailures.length, 1);
      });

      test('find matches a recording id, a contact id or one leg of a master contact, exactly', async () => {
        const hostile = `<script>alert("x")</script>'%_,`;
        await ledger.upsertDiscovered([
          job('r1'),
          job('r1', { channel: 'agent' }),
          job('r2', { meta: meta('r2', { contactId: 'c-2' }) }),
          job('m1', { meta: meta('m1', { contactIds: ['leg-1', 'leg-2'] }) }),
          job(hostile),
        ]);
        const ids = async (id: string, limit = 10) =>
          (await ledger.find(id, limit)).map((r) => `${r.recordingId}/${r.channel}`);
        assert.deepEqual(await ids('r1'), ['r1/agent', 'r1/combined']);
        assert.deepEqual(await ids('r1', 1), ['r1/agent']);
        assert.deepEqual(await ids('c-2'), ['r2/combined']);
        assert.deepEqual(await ids('leg-2'), ['m1/combined']);
        assert.deepEqual(await ids('leg'), []);
        assert.deepEqual(await ids('%'), []);
        assert.deepEqual(await ids(hostile), [`${hostile}/combined`]);
      });
    });

    describe('watermarks', () => {
      test('are absent until set, then hold the last value', async () => {
        assert.equal(await ledger.getWatermark('run'), undefined);
        await ledger.setWatermark('run', '2024-05-01T00:00:00Z');
        await ledger.setWatermark('run', '2024-05-02T00:00:00Z');
        await ledger.setWatermark('other', 'x');
        assert.equal(await ledger.getWatermark('run'), '2024-05-02T00:00:00Z');
        assert.equal(await ledger.getWatermark('other'), 'x');
      });
    });

    describe('named leases', () => {
      test('a free lease is taken, and held only by its owner', async () => {
        assert.equal(await ledger.acquireLease('discoverer', 'p1', lease, T0), true);
        assert.equal(await ledger.acquireLease('discoverer', 'p2', lease, T0 + 1), false);
        // Another name is another lease.
        assert.equal(await ledger.acquireLease('other', 'p2', lease, T0 + 1), true);
      });

      test('its holder renews it, pushing the expiry out', async () => {
        assert.ok(await ledger.acquireLease('discoverer', 'p1', lease, T0));
        assert.ok(await ledger.acquireLease('discoverer', 'p1', lease, T0 + lease - 1));
        // Past the first expiry, still inside the renewed one.
        assert.equal(await ledger.acquireLease('discoverer', 'p2', lease, T0 + lease + 1), false);
        assert.equal(await ledger.acquireLease('discoverer', 'p2', lease, T0 + 2 * lease - 2), false);
      });

      test('an expired lease is taken over, and its old holder is then refused', async () => {
        assert.ok(await ledger.acquireLease('discoverer', 'p1', lease, T0));
        assert.equal(await ledger.acquireLease('discoverer', 'p2', lease, T0 + lease - 1), false);
        assert.equal(await ledger.acquireLease('discoverer', 'p2', lease, T0 + lease), true);
        assert.equal(await ledger.acquireLease('discoverer', 'p1', lease, T0 + lease + 1), false);
      });

      test('release frees it at once, and only its holder can release it', async () => {
        assert.ok(await ledger.acquireLease('discoverer', 'p1', lease, T0));
        await ledger.releaseLease('discoverer', 'p2');
        assert.equal(await ledger.acquireLease('discoverer', 'p2', lease, T0 + 1), false);
        await ledger.releaseLease('discoverer', 'p1');
        assert.equal(await ledger.acquireLease('discoverer', 'p2', lease, T0 + 2), true);
        // Releasing a lease nobody holds is a no-op.
        await ledger.releaseLease('nobody-holds-this', 'p1');
      });

      test('of owners racing for a free lease from two handles, exactly one wins', async () => {
        const other = await fx.reopen();
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 ? other : ledger).acquireLease('discoverer', `p${i}`, lease, T0),
          ),
        );
        assert.equal(results.filter(Boolean).length, 1);
      });
    });

    describe('persistence', () => {
      test('a reopened ledger holds every row, lease and watermark', async () => {
        await ledger.upsertDiscovered([job('r1'), job('r2', { state: 'waiting' })]);
        const claimed = await claimOne(ledger, 'w1');
        await ledger.setWatermark('run', '2024-05-01T00:00:00Z');
        const rows = await ledger.list({});
        await ledger.close();

        const again = await fx.reopen();
        assert.deepEqual(await again.list({}), rows);
        assert.equal(await again.getWatermark('run'), '2024-05-01T00:00:00Z');
        assert.ok(await again.finish(claimed, 'w1', { state: 'stored', stored: storedInfo('r1') }));
      });

      test('has a location to name in messages', () => {
        assert.ok(ledger.location.length > 0);
        assert.doesNotMatch(ledger.location, /:[^:/@]+@/, 'no password in the location');
      });
    });

    describe('retrySettled', () => {
      /** Claims and ends each id in `state` with `reason`, one at a time. */
      async function settle(ids: string[], state: 'failed' | 'purged', reason: string): Promise<void> {
        for (const id of ids) {
          const row = await claimOne(ledger, 'w1');
          assert.equal(row.recordingId, id);
          assert.ok(
            await ledger.finish(key(id), 'w1', { state, reason, errorCode: 'storage', errorMessage: 'boom' }),
          );
        }
      }

      test('puts failed rows back to pending, due now, attempts reset, and says how many', async () => {
        await ledger.upsertDiscovered([job('r1'), job('r2')]);
        await settle(['r1', 'r2'], 'failed', 'gave up after 6 attempts: storage');
        const moved = await ledger.retrySettled({ state: 'failed', now: T0 + 1000 });
        assert.equal(moved, 2);
        const r1 = await mustGet(ledger, key('r1'));
        assert.equal(r1.state, 'pending');
        assert.equal(r1.reason, null);
        assert.equal(r1.attempts, 0);
        assert.equal(r1.nextRunAt, T0 + 1000);
        assert.equal(r1.leaseOwner, null);
        // The last error stays for the operator until the next one.
        assert.equal(r1.lastErrorCode, 'storage');
        // And the next claim takes them again.
        const claimed = await ledger.claim({ owner: 'w2', limit: 10, leaseMs: lease, now: T0 + 1000 });
        assert.deepEqual(claimed.map((r) => r.recordingId).sort(), ['r1', 'r2']);
        assert.equal(await ledger.retrySettled({ state: 'failed', now: T0 }), 0, 'nothing left to retry');
      });

      test('matches the reason as a substring ignoring case, and only the state asked for', async () => {
        await ledger.upsertDiscovered([job('r1'), job('r2'), job('r3')]);
        await settle(['r1'], 'failed', 'gave up after 6 attempts: storage 100%_full');
        await settle(['r2'], 'failed', 'media_host_refused');
        await settle(['r3'], 'purged', 'media purged by retention');
        assert.equal(await ledger.retrySettled({ state: 'failed', reasonContains: '100%_FULL', now: T0 }), 1);
        assert.equal((await mustGet(ledger, key('r1'))).state, 'pending');
        assert.equal((await mustGet(ledger, key('r2'))).state, 'failed');
        // `%` and `_` are no wildcards.
        assert.equal(await ledger.retrySettled({ state: 'failed', reasonContains: 'media%', now: T0 }), 0);
        assert.equal((await mustGet(ledger, key('r3'))).state, 'purged');
        assert.equal(await ledger.retrySettled({ state: 'purged', now: T0 }), 1);
        assert.equal((await mustGet(ledger, key('r3'))).state, 'pending');
      });

      test('keeps to the createdDate window', async () => {
        await ledger.upsertDiscovered([
          job('early', { meta: meta('early', { createdDate: '2024-05-01T08:00:00Z' }) }),
          job('late', { meta: meta('late', { createdDate: '2024-05-01T12:00:00Z' }) }),
        ]);
        await settle(['early', 'late'], 'failed', 'x');
        const moved = await ledger.retrySettled({
          state: 'failed',
          created: { from: '2024-05-01T10:00:00Z', to: '2024-05-02T00:00:00Z' },
          now: T0,
        });
        assert.equal(moved, 1);
        assert.equal((await mustGet(ledger, key('late'))).state, 'pending');
        assert.equal((await mustGet(ledger, key('early'))).state, 'failed');
      });

      test('refuses stored and working states', async () => {
        for (const state of ['stored', 'pending', 'nonsense']) {
          await assert.rejects(
            ledger.retrySettled({ state: state as 'failed', now: T0 }),
            (err: unknown) => err instanceof Error && /cannot retry rows in state/.test(err.message),
          );
        }
      });
    });

    describe('exports', () => {
      test('records an export from start to end, newest first', async () => {
        assert.deepEqual(await ledger.listExports(10), []);
        const first = await ledger.startExport({
          startedAt: T0,
          since: '2024-05-01T00:00:00.000Z',
          until: '2024-05-02T00:00:00.000Z',
          selection: null,
          dialect: 'recording-api',
        });
        const second = await ledger.startExport({
          startedAt: T0 + 60_000,
          since: '2024-05-02T00:00:00.000Z',
          until: '2024-05-03T00:00:00.000Z',
          selection: '{"ids":{"file":"ids.txt","count":3}}',
          dialect: 'platform',
        });
        assert.notEqual(first, second);
        assert.equal(
          await ledger.finishExport(first, {
            endedAt: T0 + 5000,
            exitCode: 1,
            counts: { total: 3, stored: 2, failed: 1 },
          }),
          true,
        );
        assert.equal(await ledger.finishExport(999_999, { endedAt: T0, exitCode: 0, counts: null }), false);
        const listed = await ledger.listExports(10);
        assert.deepEqual(listed, [
          {
            id: second,
            startedAt: new Date(T0 + 60_000).toISOString(),
            endedAt: null,
            since: '2024-05-02T00:00:00.000Z',
            until: '2024-05-03T00:00:00.000Z',
            selection: '{"ids":{"file":"ids.txt","count":3}}',
            dialect: 'platform',
            exitCode: null,
            counts: null,
          },
          {
            id: first,
            startedAt: new Date(T0).toISOString(),
            endedAt: new Date(T0 + 5000).toISOString(),
            since: '2024-05-01T00:00:00.000Z',
            until: '2024-05-02T00:00:00.000Z',
            selection: null,
            dialect: 'recording-api',
            exitCode: 1,
            counts: { total: 3, stored: 2, failed: 1 },
          },
        ]);
        assert.deepEqual(
          (await ledger.listExports(1)).map((e) => e.id),
          [second],
        );
      });
    });
  });
}
