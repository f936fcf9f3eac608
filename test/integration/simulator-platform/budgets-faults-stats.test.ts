import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { request } from 'undici';

import { faultProfiles } from '../../../src/simulator/index.js';
import {
  startPlatformSimulator,
  type PlatformSimulator,
  type PlatformSimulatorStats,
  type PlatformTruth,
} from '../../../src/simulator/platform/index.js';
import { get, listing, login, playback } from './plat-client.js';

describe('platform budgets, faults, /__stats and /__truth (contract §5)', () => {
  let sim: PlatformSimulator;
  let token: string;
  let ready: string;
  before(async () => {
    sim = await startPlatformSimulator({
      recordings: 8,
      stallMs: 300,
      mix: {
        stillProcessing: 0,
        lateIndexed: 0,
        abandoned: 0,
        unrecorded: 0,
        tinyMedia: 0,
        twoInteractions: 0,
      },
      extraCalls: [{ sizeBytes: 200_000 }],
    });
    token = (await login(sim)).access_token;
    ready = (await sim.truth()).masterContacts.find((m) => m.origin === 'extra')?.masterContactId ?? '';
  });
  after(() => sim.stop());

  test('defaults: 150 playback requests per 300 s, 50 others per minute', () => {
    const s = sim.stats();
    assert.deepEqual(s.budgets.playback.limit, { requests: 150, windowSeconds: 300 });
    assert.deepEqual(s.budgets.other.limit, { requests: 50, windowSeconds: 60 });
  });

  test('playback budget: 429 {message, route} without Retry-After; refused requests do not count', async () => {
    sim.setLimit('playback', { requests: 3, windowSeconds: 1 });
    sim.resetStats();
    const started = Date.now();
    for (let i = 0; i < 3; i++) assert.equal((await playback(sim, token, ready)).status, 200);
    const lastAccepted = Date.now();
    const refused = await playback(sim, token, ready);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), null);
    assert.equal(typeof refused.body.message, 'string');
    assert.equal(refused.body.route, '/media-playback/v1/contacts');
    // The other budget is separate.
    assert.equal((await listing(sim, token, { top: '1' })).status, 200);
    // Keep knocking while refused; had the refusals counted, the window would never clear.
    while (Date.now() - started < 900) {
      assert.equal((await playback(sim, token, ready)).status, 429);
      await sleep(100);
    }
    await sleep(Math.max(0, lastAccepted + 1050 - Date.now()));
    assert.equal((await playback(sim, token, ready)).status, 200);
    const s = sim.stats();
    assert.equal(s.budgets.playback.peakAcceptedInWindow, 3);
    assert.ok(s.budgets.playback.sent429 >= 2);
    assert.equal(s.budgets.playback.accepted, 4);
    assert.equal(s.budgets.other.accepted, 1);
    sim.setLimit('playback', false);
  });

  test('every other API-host request shares the per-minute budget', async () => {
    sim.setLimit('other', { requests: 2, windowSeconds: 60 });
    sim.resetStats();
    assert.equal((await listing(sim, token, { top: '1' })).status, 200);
    assert.equal((await get(`${sim.urls.api}/nowhere`, { authorization: `Bearer ${token}` })).status, 404);
    const refused = await listing(sim, token, { top: '1' });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), null);
    assert.equal((await playback(sim, token, ready)).status, 200);
    const s = sim.stats();
    assert.equal(s.budgets.other.sent429, 1);
    assert.equal(s.budgets.other.peakAcceptedInWindow, 2);
    sim.setLimit('other', false);
  });

  test('/__stats and /__truth are served by the API host and count against nothing', async () => {
    sim.resetStats();
    const r = await playback(sim, token, ready);
    const url = r.body.interactions[0]?.data.fileToPlayUrl ?? '';
    const res = await request(url);
    await res.body.arrayBuffer();
    const stats = await get<PlatformSimulatorStats>(`${sim.urls.api}/__stats`);
    assert.equal(stats.status, 200);
    assert.equal(stats.body.calls.playback.byStatus['200'], 1);
    assert.equal(stats.body.calls.media.byStatus['200'], 1);
    assert.equal(stats.body.media.bytesServed, 200_000);
    assert.equal(stats.body.playback.mediaUrlsIssued, 1);
    assert.equal(stats.body.budgets.other.arrivals, 0);
    const truth = await get<PlatformTruth>(`${sim.urls.api}/__truth`);
    assert.equal(truth.status, 200);
    assert.equal(truth.body.tenantId, sim.tenantId);
    const m = truth.body.masterContacts.find((x) => x.masterContactId === ready);
    assert.ok(m);
    assert.equal(m.expected, 'stored');
    const object = m.objects[0];
    assert.ok(object);
    assert.equal(object.sizeBytes, 200_000);
    assert.match(object.md5, /^[0-9a-f]{32}$/);
    assert.equal(object.contentType, 'audio/mp4');
    assert.equal(sim.stats().budgets.other.arrivals, 0);
  });

  test('fault profiles are those of the recording-api simulator', async () => {
    const chaos = await startPlatformSimulator({ recordings: 1, faults: 'chaos' });
    try {
      assert.deepEqual(chaos.faults(), faultProfiles.chaos);
    } finally {
      await chaos.stop();
    }
  });

  test('media transfers that stall, break off, or are cut short', async () => {
    const r = await playback(sim, token, ready);
    const url = r.body.interactions[0]?.data.fileToPlayUrl ?? '';
    for (const [kind, outcome] of [
      ['stall', 'stall'],
      ['shortBody', 'short'],
      ['connectionReset', 'reset'],
    ] as const) {
      sim.setFaults({ [kind]: 1 });
      sim.resetStats();
      const t0 = Date.now();
      const res = await request(url);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], '200000');
      let received = 0;
      await assert.rejects(async () => {
        for await (const chunk of res.body) received += (chunk as Buffer).length;
        if (received < 200_000) throw new Error(`short body ${received}`);
      });
      assert.ok(received < 200_000, kind);
      if (kind === 'stall') assert.ok(Date.now() - t0 >= 250, 'a stall holds the connection');
      assert.equal(sim.stats().calls.media.byStatus[outcome], 1);
    }
    sim.setFaults('none');
  });

  test('API faults: 5xx, revoked tokens, 429 bursts', async () => {
    sim.setFaults({ serverError: 1 });
    assert.ok([500, 503].includes((await listing(sim, token, { top: '1' })).status));
    sim.setFaults({ tokenRevocation: 1 });
    assert.equal((await listing(sim, token, { top: '1' })).status, 401);
    sim.setFaults('none');
    assert.equal((await listing(sim, token, { top: '1' })).status, 401, 'the revoked token stays revoked');
    token = (await login(sim)).access_token;
    sim.setFaults({ rateLimitBurst: 1 });
    assert.equal((await playback(sim, token, ready)).status, 429);
    sim.setFaults('none');
    assert.ok(sim.stats().faults.rateLimitBurst >= 1);
  });
});
