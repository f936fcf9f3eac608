import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startPlatformSimulator, type PlatformSimulator } from '../../../src/simulator/platform/index.js';
import { completedUrl, get, listAll, listing, login, type Listing } from './plat-client.js';

const quiet = {
  stillProcessing: 0,
  lateIndexed: 0,
  abandoned: 0,
  unrecorded: 0,
  purged: 0,
  twoInteractions: 0,
  tinyMedia: 0,
  transferred: 0,
  nonVoice: 0,
  before2018Calls: 0,
};

describe('platform contacts/completed (contract §3)', () => {
  let sim: PlatformSimulator;
  let token: string;
  before(async () => {
    sim = await startPlatformSimulator({
      recordings: 60,
      rateLimit: false,
      shortPages: 0.5,
      listingInserts: false,
      mix: { transferred: 0.3, nonVoice: 0.2, abandoned: 0.05, unrecorded: 0.05 },
    });
    token = (await login(sim)).access_token;
  });
  after(() => sim.stop());
  const auth = () => ({ authorization: `Bearer ${token}` });

  test('406 unless Accept names application/json (*/* alone does not count)', async () => {
    const url = completedUrl(sim, { top: '1' });
    assert.equal((await get(url, auth())).status, 406);
    assert.equal((await get(url, { ...auth(), accept: '*/*' })).status, 406);
    const ok = await get(url, { ...auth(), accept: 'text/plain, application/json;q=0.9' });
    assert.equal(ok.status, 200);
  });

  test('dates without a literal Z: 400, empty body, text in icStatusDescription', async () => {
    for (const startDate of ['2024-01-01T00:00:00+00:00', '2024-01-01', '2024-01-01T00:00:00']) {
      const r = await listing(sim, token, { startDate, endDate: '2030-01-01T00:00:00Z' });
      assert.equal(r.status, 400, startDate);
      assert.equal(r.text, '');
      assert.match(r.headers.get('icstatusdescription') ?? '', /startDate/);
    }
    const z = await listing(sim, token, {
      startDate: '2000-01-01T00:00:00.000Z',
      endDate: '2100-01-01T00:00:00Z',
    });
    assert.equal(z.status, 200);
  });

  test('paging follows _links.next (full URLs); pages may be short while not last; every leg once', async () => {
    const whole = await listing(sim, token, { mediaTypeId: '4' });
    const { items, pages } = await listAll(sim, token, { mediaTypeId: '4', top: '7' });
    const legIds = whole.body.completedContacts.map((i) => String(i.contactId));
    assert.equal(whole.body._links.next, null);
    assert.deepEqual(
      items.map((i) => String(i.contactId)),
      legIds,
    );
    assert.ok(pages.length > 3);
    const last = pages[pages.length - 1];
    assert.equal(last?.body._links.next, null);
    const short = pages.slice(0, -1).filter((p) => p.body.completedContacts.length < 7);
    assert.ok(short.length > 0, 'some non-final page is shorter than top');
    for (const p of pages) {
      assert.equal(p.body.totalRecords, legIds.length);
      if (p.body._links.next !== null)
        assert.ok(p.body._links.next.startsWith(`${sim.urls.api}/inContactAPI/`));
    }
    const starts = items.map((i) => Date.parse(String(i.contactStartDate)));
    assert.deepEqual(
      starts,
      [...starts].sort((a, b) => a - b),
    );
  });

  test('204 with no body when nothing matches or skip is past the end', async () => {
    const none = await listing(sim, token, {
      startDate: '2001-01-01T00:00:00Z',
      endDate: '2001-01-02T00:00:00Z',
    });
    assert.equal(none.status, 204);
    assert.equal(none.text, '');
    const past = await listing(sim, token, { skip: '100000' });
    assert.equal(past.status, 204);
  });

  test('transfer legs share masterContactId; from the third leg on it is the third leg’s contactId', async () => {
    const truth = await sim.truth();
    const { items } = await listAll(sim, token, { mediaTypeId: '4' });
    const byId = new Map(items.map((i) => [String(i.contactId), i]));
    const calls = new Map<string, string[]>();
    for (const m of truth.masterContacts)
      calls.set(m.callId, [...(calls.get(m.callId) ?? []), ...m.contactIds]);
    const long = [...calls.values()].filter((legs) => legs.length >= 3);
    assert.ok(long.length > 0, 'a call with three or more legs');
    for (const legs of long) {
      const [l1, l2, l3, ...rest] = legs;
      assert.equal(String(byId.get(l2 ?? '')?.masterContactId), l1);
      assert.equal(String(byId.get(l1 ?? '')?.masterContactId), l1);
      for (const l of [l3, ...rest]) assert.equal(String(byId.get(l ?? '')?.masterContactId), l3);
    }
    for (const i of items) {
      assert.equal(typeof i.contactId, 'number');
      assert.ok(String(i.contactId).length <= 15 && String(i.contactId).length > 9);
    }
  });

  test('without mediaTypeId non-voice contacts are listed too; hierarchy lists a master’s legs', async () => {
    const truth = await sim.truth();
    const all = await listAll(sim, token, {});
    const kinds = new Set(all.items.map((i) => i.mediaTypeId));
    assert.ok(kinds.has(4) && kinds.size > 1);
    for (const id of truth.nonVoiceContactIds) {
      assert.ok(all.items.some((i) => String(i.contactId) === id && i.mediaTypeId !== 4));
    }
    const m = truth.masterContacts.find((x) => x.contactIds.length >= 2);
    assert.ok(m);
    const h = await get<{ masterContactId: number; childContacts: { contactId: number }[] }>(
      `${sim.urls.api}/inContactAPI/services/v30.0/contacts/${m.contactIds[1]}/hierarchy`,
      { ...auth(), accept: 'application/json' },
    );
    assert.equal(h.status, 200);
    assert.equal(String(h.body.masterContactId), m.masterContactId);
    assert.deepEqual(
      h.body.childContacts.map((c) => String(c.contactId)),
      m.contactIds,
    );
  });

  test('versions below v26.0 use contactStart/fromAddr/toAddr/mediaType; fields= trims items', async () => {
    const old = await listing(sim, token, { top: '3', mediaTypeId: '4' }, 'v25.0');
    assert.equal(old.status, 200);
    for (const item of old.body.completedContacts) {
      assert.ok('contactStart' in item && 'fromAddr' in item && 'toAddr' in item);
      assert.equal(item.mediaType, '4');
      assert.ok(!('contactStartDate' in item) && !('fromAddress' in item) && !('mediaTypeId' in item));
    }
    const trimmed = await listing(sim, token, { top: '3', fields: 'contactId,masterContactId' });
    for (const item of trimmed.body.completedContacts)
      assert.deepEqual(Object.keys(item).sort(), ['contactId', 'masterContactId']);
  });

  test('updatedSince and orderBy=lastUpdateTime asc', async () => {
    const { items } = await listAll(sim, token, { orderBy: 'lastUpdateTime asc' });
    const updates = items.map((i) => Date.parse(String(i.lastUpdateTime)));
    assert.deepEqual(
      updates,
      [...updates].sort((a, b) => a - b),
    );
    const mid = new Date(updates[Math.floor(updates.length / 2)] ?? 0).toISOString();
    const since = await listAll(sim, token, { updatedSince: mid });
    assert.ok(since.items.length > 0 && since.items.length < items.length);
    for (const i of since.items) assert.ok(Date.parse(String(i.lastUpdateTime)) >= Date.parse(mid));
    assert.equal((await listing(sim, token, { orderBy: 'agentId desc' })).status, 400);
  });
});

describe('platform listings of a live index', () => {
  test('a tenant sending every value as a string', async () => {
    const sim = await startPlatformSimulator({ recordings: 3, stringValues: true, mix: quiet });
    try {
      const token = (await login(sim)).access_token;
      const r = await listing(sim, token, { top: '10' });
      assert.equal(r.status, 200);
      for (const item of r.body.completedContacts) {
        for (const v of Object.values(item)) assert.equal(typeof v, 'string');
        assert.equal(item.isLogged, 'True');
      }
    } finally {
      await sim.stop();
    }
  });

  test('late indexing while paging shifts later offsets: a contact with an earlier start appears', async () => {
    const sim = await startPlatformSimulator({
      recordings: 40,
      shortPages: 0,
      timeScale: 1,
      listingInserts: { probability: 1, max: 3 },
      mix: { ...quiet, lateIndexed: 0.25 },
    });
    try {
      const token = (await login(sim)).access_token;
      const first = await listing(sim, token, { top: '10', mediaTypeId: '4' });
      assert.equal(first.status, 200);
      const seen = first.body.completedContacts.map((i) => String(i.contactId));
      let next = first.body._links.next;
      const totals = [first.body.totalRecords];
      while (next !== null) {
        const page = await get<Listing>(next, {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
        });
        if (page.status === 204) break;
        totals.push(page.body.totalRecords);
        seen.push(...page.body.completedContacts.map((i) => String(i.contactId)));
        next = page.body._links.next;
      }
      assert.equal(sim.stats().listingInserts, 3);
      assert.ok((totals[totals.length - 1] ?? 0) > (totals[0] ?? 0), 'the index grew while paging');
      // Shifted offsets repeat a contact across a page boundary or miss one a later listing finds.
      const full = await listAll(sim, token, { mediaTypeId: '4' });
      const missedOrRepeated =
        new Set(seen).size !== seen.length || full.items.some((i) => !seen.includes(String(i.contactId)));
      assert.ok(missedOrRepeated);
    } finally {
      await sim.stop();
    }
  });

  test('a user without the Reporting permission gets 403 on contacts/completed', async () => {
    const sim = await startPlatformSimulator({ recordings: 2, mix: quiet });
    try {
      const token = (await login(sim, sim.accessKey({ reporting: false }))).access_token;
      const r = await listing(sim, token, { top: '1' });
      assert.equal(r.status, 403);
    } finally {
      await sim.stop();
    }
  });
});
