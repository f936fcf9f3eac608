import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { request } from 'undici';

import { startSimulator, type Simulator } from '../../../src/simulator/index.js';
import { accessToken, eventually, listAll, search } from './sim-client.js';

const noSpecials = {
  stillProcessing: 0,
  failed: 0,
  purged: 0,
  neverCaptured: 0,
  lateIndexed: 0,
  hostileIds: 0,
};
const from = '2024-01-15T00:00:00Z';
const to = '2024-01-16T00:00:00Z';

describe('search (contract §2)', () => {
  let sim: Simulator;
  let token: string;
  before(async () => {
    sim = await startSimulator({
      recordings: 40,
      seed: 11,
      createdFrom: from,
      createdTo: to,
      mix: { ...noSpecials, stillProcessing: 0.25, failed: 0.1 },
      rateLimit: false,
      listingInserts: false,
    });
    token = await accessToken(sim);
  });
  after(() => sim.stop());

  test('GET with a JSON body and POST with the same body answer alike', async () => {
    const body = { pageSize: 5 };
    const viaGet = await request(`${sim.url}/api/v2/recording/search`, {
      method: 'GET',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(viaGet.statusCode, 200);
    const page = (await viaGet.body.json()) as { recordings: unknown[] };
    const viaPost = await search(sim, token, body);
    assert.deepEqual(viaPost.body.recordings, page.recordings);
    assert.equal(page.recordings.length, 5);
  });

  test('default sort is createdDate desc; asc reverses it; every field of the contract is there', async () => {
    const desc = await listAll(sim, token, { pageSize: 100 });
    const asc = await listAll(sim, token, { sort: [{ field: 'createdDate', direction: 'asc' }] });
    assert.equal(desc.length, 40);
    const dates = desc.map((r) => r.createdDate);
    assert.deepEqual(dates, [...dates].sort().reverse());
    assert.deepEqual(
      asc.map((r) => r.createdDate),
      [...dates].reverse(),
    );
    const [first] = (await search(sim, token, { pageSize: 1 })).body.recordings;
    assert.deepEqual(Object.keys(first ?? {}).sort(), [
      'agentId',
      'contactId',
      'createdDate',
      'direction',
      'durationSeconds',
      'recordingId',
      'skillName',
      'status',
    ]);
    assert.match(first?.createdDate ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('status eq / in and createdDate gte / gt / lte / lt filter as the contract says', async () => {
    const all = await listAll(sim, token, {});
    const available = await listAll(sim, token, {
      filters: [{ field: 'status', operator: 'eq', value: 'Available' }],
    });
    assert.deepEqual(
      available.map((r) => r.recordingId).sort(),
      all
        .filter((r) => r.status === 'Available')
        .map((r) => r.recordingId)
        .sort(),
    );
    assert.ok(available.length < all.length, 'the mix has recordings that are not Available');
    const inSet = await listAll(sim, token, {
      filters: [{ field: 'status', operator: 'in', value: ['Recording', 'Processing'] }],
    });
    assert.deepEqual(
      inSet.map((r) => r.recordingId).sort(),
      all
        .filter((r) => r.status === 'Recording' || r.status === 'Processing')
        .map((r) => r.recordingId)
        .sort(),
    );
    const pivot = all[20]?.createdDate ?? '';
    const count = async (operator: string) =>
      (await listAll(sim, token, { filters: [{ field: 'createdDate', operator, value: pivot }] })).length;
    const expect = (pred: (d: string) => boolean) => all.filter((r) => pred(r.createdDate)).length;
    assert.equal(
      await count('gte'),
      expect((d) => d >= pivot),
    );
    assert.equal(
      await count('gt'),
      expect((d) => d > pivot),
    );
    assert.equal(
      await count('lte'),
      expect((d) => d <= pivot),
    );
    assert.equal(
      await count('lt'),
      expect((d) => d < pivot),
    );
    // A millisecond value is compared exactly (toISOString() output must work).
    assert.equal(
      (
        await listAll(sim, token, {
          filters: [{ field: 'createdDate', operator: 'gte', value: new Date(from).toISOString() }],
        })
      ).length,
      40,
    );
  });

  test('invalid requests answer 400 invalid_request', async () => {
    const invalid = [
      { pageSize: 0 },
      { pageSize: 101 },
      { pageSize: 2.5 },
      { page: 2 },
      { filters: [{ field: 'agentId', operator: 'eq', value: '1' }] },
      { filters: [{ field: 'status', operator: 'ne', value: 'Available' }] },
      { filters: [{ field: 'status', operator: 'eq', value: 'available' }] },
      { filters: [{ field: 'createdDate', operator: 'gte', value: '2024-01-15' }] },
      { filters: [{ field: 'createdDate', operator: 'eq', value: from }] },
      { sort: [{ field: 'durationSeconds', direction: 'asc' }] },
      { sort: [{ field: 'createdDate', direction: 'up' }] },
      { pagesize: 10 },
    ];
    for (const body of invalid) {
      const answer = await search(sim, token, body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(answer.body.error, 'invalid_request', JSON.stringify(body));
    }
    assert.equal((await search(sim, token, { page: 1, pageSize: 100 })).status, 200);
  });

  test('cursors page through everything once, carry the query, and ignore fields sent with them', async () => {
    const filters = [{ field: 'status', operator: 'eq', value: 'Available' }];
    const expected = await listAll(sim, token, { filters, pageSize: 100 });
    const first = await search(sim, token, { filters, pageSize: 7 });
    const seen = [...first.body.recordings];
    let cursor = first.body.nextPageToken;
    while (cursor !== null) {
      // pageSize and filters sent with a cursor are ignored: the cursor carries the query.
      const page = await search(sim, token, { pageToken: cursor, pageSize: 100, filters: [] });
      assert.equal(page.status, 200);
      assert.ok(page.body.recordings.length <= 7);
      seen.push(...page.body.recordings);
      cursor = page.body.nextPageToken;
    }
    assert.deepEqual(seen, expected);
  });

  test('a cursor may be sent again to retry a page', async () => {
    const first = await search(sim, token, { pageSize: 10 });
    const cursor = first.body.nextPageToken ?? '';
    const a = await search(sim, token, { pageToken: cursor });
    const b = await search(sim, token, { pageToken: cursor });
    assert.deepEqual(a.body.recordings, b.body.recordings);
  });

  test('a tampered or unknown cursor: 400 invalid_page_token', async () => {
    const first = await search(sim, token, { pageSize: 10 });
    const cursor = first.body.nextPageToken ?? '';
    for (const bad of [`${cursor}x`, 'garbage', '']) {
      const answer = await search(sim, token, { pageToken: bad });
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.body, { error: 'invalid_page_token' });
    }
  });

  test('invalidateCursors(): live cursors answer 400 invalid_page_token', async () => {
    const first = await search(sim, token, { pageSize: 10 });
    sim.invalidateCursors();
    const answer = await search(sim, token, { pageToken: first.body.nextPageToken });
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.body, { error: 'invalid_page_token' });
  });
});

describe('search: cursor expiry, faults, late indexing and inserts', () => {
  test('a cursor unused for the (scaled) idle time expires', async () => {
    const sim = await startSimulator({
      recordings: 5,
      mix: noSpecials,
      cursorIdleMs: 600_000,
      timeScale: 6000,
    });
    try {
      const token = await accessToken(sim);
      const first = await search(sim, token, { pageSize: 2 });
      await new Promise((r) => setTimeout(r, 250)); // idle 100 ms real
      const answer = await search(sim, token, { pageToken: first.body.nextPageToken });
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.body, { error: 'invalid_page_token' });
      assert.equal(sim.stats().cursors.expired, 1);
    } finally {
      await sim.stop();
    }
  });

  test('the cursorInvalidation fault drops cursors; the first page still works', async () => {
    const sim = await startSimulator({ recordings: 5, mix: noSpecials, faults: { cursorInvalidation: 1 } });
    try {
      const token = await accessToken(sim);
      const first = await search(sim, token, { pageSize: 2 });
      assert.equal(first.status, 200);
      const answer = await search(sim, token, { pageToken: first.body.nextPageToken });
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.body, { error: 'invalid_page_token' });
      assert.equal(sim.stats().faults.cursorInvalidation, 1);
    } finally {
      await sim.stop();
    }
  });

  test('a late-indexed recording is absent from search until its delay has passed', async () => {
    const sim = await startSimulator({
      recordings: 3,
      mix: noSpecials,
      rateLimit: false,
      extraRecordings: [{ id: 'late-one', lateIndexMs: 1500 }],
    });
    try {
      const token = await accessToken(sim);
      const ids = async () => (await listAll(sim, token, {})).map((r) => r.recordingId);
      assert.ok(!(await ids()).includes('late-one'));
      await eventually(async () => ((await ids()).includes('late-one') ? true : undefined));
      const truth = await sim.truth();
      assert.deepEqual(truth.recordings.find((r) => r.recordingId === 'late-one')?.traits, ['late-indexed']);
    } finally {
      await sim.stop();
    }
  });

  test('an insert ahead of an offset cursor shifts items down: with desc sort one is listed twice', async () => {
    const sim = await startSimulator({
      recordings: 10,
      mix: noSpecials,
      createdFrom: from,
      createdTo: to,
      listingInserts: false,
    });
    try {
      const token = await accessToken(sim);
      const first = await search(sim, token, { pageSize: 5 });
      sim.addRecordings([{ id: 'newest', createdDate: to }]);
      const second = await search(sim, token, { pageToken: first.body.nextPageToken });
      const firstIds = first.body.recordings.map((r) => r.recordingId);
      const secondIds = second.body.recordings.map((r) => r.recordingId);
      assert.equal(secondIds[0], firstIds[4], 'the last item of page 1 shifted onto page 2');
      assert.ok(!firstIds.includes('newest') && !secondIds.includes('newest'));
    } finally {
      await sim.stop();
    }
  });

  test('listingInserts put new recordings into the listed window while a client pages', async () => {
    const sim = await startSimulator({
      recordings: 30,
      mix: noSpecials,
      listingInserts: { probability: 1, count: 2, max: 4 },
    });
    try {
      const token = await accessToken(sim);
      const seen = new Set((await listAll(sim, token, { pageSize: 5 })).map((r) => r.recordingId));
      assert.equal(sim.stats().listingInserts, 4);
      const truth = await sim.truth();
      const inserted = truth.recordings.filter((r) => r.origin === 'inserted');
      assert.equal(inserted.length, 4);
      assert.equal(truth.recordings.length, 34);
      // A second complete listing finds everything, the inserts included.
      for (const r of await listAll(sim, token, { pageSize: 100 })) seen.add(r.recordingId);
      assert.equal(seen.size, 34);
    } finally {
      await sim.stop();
    }
  });
});
