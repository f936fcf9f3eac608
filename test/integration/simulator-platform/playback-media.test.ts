import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { startPlatformSimulator, type PlatformSimulator } from '../../../src/simulator/platform/index.js';
import { download, login, playback } from './plat-client.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('platform media playback and the media host (contract §4)', () => {
  let sim: PlatformSimulator;
  let token: string;
  const ids: Record<string, string> = {};
  before(async () => {
    sim = await startPlatformSimulator({
      recordings: 10,
      timeScale: 600,
      playbackLimit: false,
      rateLimit: false,
      mix: { stillProcessing: 0, lateIndexed: 0, wavMedia: 0, multipartEtag: 0 },
      extraCalls: [
        { sizeBytes: 300_000 },
        { interactions: 2, sizeBytes: 5000 },
        { sizeBytes: 800 },
        { recorded: false },
        { abandoned: true },
        { legs: 3, sizeBytes: 4000 },
        { purged: true },
        { startDate: '2018-06-01T10:00:00Z' },
        { contentType: 'audio/wav', etag: 'multipart', sizeBytes: 3000 },
        { processingMs: 120_000, sizeBytes: 2000 }, // 200 ms of real time at scale 600
      ],
    });
    token = (await login(sim)).access_token;
    const truth = await sim.truth();
    const extra = truth.masterContacts.filter((m) => m.origin === 'extra');
    const pick = (name: string, f: (m: (typeof extra)[number]) => boolean) => {
      const m = extra.find(f);
      assert.ok(m, name);
      ids[name] = m.masterContactId;
    };
    pick('plain', (m) => m.objects[0]?.sizeBytes === 300_000);
    pick('two', (m) => m.objects.length === 2);
    pick('tiny', (m) => m.traits.includes('tiny-media'));
    pick('unrecorded', (m) => m.traits.includes('unrecorded'));
    pick('abandoned', (m) => m.traits.includes('abandoned'));
    pick('transfer1', (m) => m.traits.includes('transferred') && !m.traits.includes('second-master'));
    pick('transfer2', (m) => m.traits.includes('second-master'));
    pick('purged', (m) => m.traits.includes('purged') && m.origin === 'extra');
    pick('pre2018', (m) => m.traits.includes('before-2018'));
    pick('wav', (m) => m.objects[0]?.contentType === 'audio/wav');
    pick('processing', (m) => m.objects[0]?.sizeBytes === 2000);
    const t1 = extra.find((m) => m.masterContactId === ids.transfer1);
    ids.leg2 = t1?.contactIds[1] ?? '';
  });
  after(() => sim.stop());

  test('200: interactions with a presigned fileToPlayUrl on the media host; bytes, ETag md5, audio/mp4', async () => {
    const r = await playback(sim, token, ids.plain ?? '');
    assert.equal(r.status, 200);
    assert.equal(r.body.acdcontactId, ids.plain);
    assert.notEqual(r.body.contactId, ids.plain);
    assert.equal(r.body.interactions.length, 1);
    const it = r.body.interactions[0];
    assert.ok(it);
    assert.equal(it.mediaType, 'voice-only');
    assert.equal(it.channelType, 'PHONE_CALL');
    const url = new URL(it.data.fileToPlayUrl);
    assert.equal(url.origin, sim.urls.media);
    assert.notEqual(sim.urls.media, sim.urls.api);
    const full = await download(url.href);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-type'), 'audio/mp4');
    assert.equal(full.headers.get('content-length'), '300000');
    assert.equal(full.headers.get('accept-ranges'), 'bytes');
    assert.equal(full.bytes.length, 300_000);
    assert.equal(full.headers.get('etag'), `"${md5(full.bytes)}"`);
    assert.equal(full.bytes.subarray(4, 8).toString('ascii'), 'ftyp');
    const truth = (await sim.truth()).masterContacts.find((m) => m.masterContactId === ids.plain);
    assert.ok(truth);
    const object = truth.objects[0];
    assert.ok(object);
    assert.equal(object.md5, md5(full.bytes));
    assert.equal(object.key, `recordings/${ids.plain}_combined.mp4`);
    assert.equal(truth.expected, 'stored');
    const part = await download(url.href, { range: 'bytes=1000-' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 1000-299999/300000');
    assert.deepEqual(part.bytes, full.bytes.subarray(1000));
  });

  test('two voice interactions: two URLs ordered by start; truth keys at the usual key and -2', async () => {
    const r = await playback(sim, token, ids.two ?? '');
    assert.equal(r.status, 200);
    assert.equal(r.body.interactions.length, 2);
    const [a, b] = r.body.interactions;
    assert.ok(Date.parse(a?.startTime ?? '') < Date.parse(b?.startTime ?? ''));
    const m = (await sim.truth()).masterContacts.find((x) => x.masterContactId === ids.two);
    assert.ok(m && b);
    assert.deepEqual(
      m.objects.map((o) => o.keySuffix),
      ['', '-2'],
    );
    const second = await download(b.data.fileToPlayUrl);
    assert.equal(md5(second.bytes), m.objects[1]?.md5);
  });

  test('tiny media (≤ 1024 bytes) is served but is no audio; wav with a -N ETag on older calls', async () => {
    const tiny = await playback(sim, token, ids.tiny ?? '');
    const bytes = await download(tiny.body.interactions[0]?.data.fileToPlayUrl ?? '');
    assert.equal(bytes.bytes.length, 800);
    const m = (await sim.truth()).masterContacts.find((x) => x.masterContactId === ids.tiny);
    assert.equal(m?.expected, 'media_unavailable');
    const wav = await playback(sim, token, ids.wav ?? '');
    const w = await download(wav.body.interactions[0]?.data.fileToPlayUrl ?? '');
    assert.equal(w.headers.get('content-type'), 'audio/wav');
    assert.match(w.headers.get('etag') ?? '', /^"[0-9a-f]{32}-\d+"$/);
  });

  test('404 Interaction Not Found: unrecorded, abandoned, purged, before 13 Dec 2018, a leg’s own id, unknown', async () => {
    for (const name of ['unrecorded', 'abandoned', 'purged', 'pre2018', 'leg2']) {
      const r = await playback(sim, token, ids[name] ?? '');
      assert.equal(r.status, 404, name);
      assert.equal(r.body.message, 'Interaction Not Found');
      assert.equal(typeof r.body.internalCode, 'string');
    }
    assert.equal((await playback(sim, token, '999999999999999')).status, 404);
    // The third leg's contactId is a master of its own, with its own recording.
    assert.equal((await playback(sim, token, ids.transfer2 ?? '')).status, 200);
    assert.equal((await playback(sim, token, ids.transfer1 ?? '')).status, 200);
    const truth = await sim.truth();
    for (const name of ['unrecorded', 'abandoned']) {
      assert.equal(
        truth.masterContacts.find((m) => m.masterContactId === ids[name])?.expected,
        'media_unavailable',
      );
    }
    assert.equal(truth.masterContacts.find((m) => m.masterContactId === ids.pre2018)?.expected, 'purged');
  });

  test('a call still processing answers 404 until processing ends, then 200', async () => {
    const fresh = sim.addCalls([{ processingMs: 300_000, sizeBytes: 2048 }])[0]?.[0] ?? '';
    assert.equal((await playback(sim, token, fresh)).status, 404);
    await sleep(600); // 300 platform seconds at scale 600
    assert.equal((await playback(sim, token, fresh)).status, 200);
  });

  test('the hook purges a call: playback 404 and its media host URL 404', async () => {
    const r = await playback(sim, token, ids.processing ?? '');
    assert.equal(r.status, 200);
    sim.purge(ids.processing ?? '');
    assert.equal((await playback(sim, token, ids.processing ?? '')).status, 404);
    assert.equal((await download(r.body.interactions[0]?.data.fileToPlayUrl ?? '')).status, 404);
  });

  test('an expired fileToPlayUrl gets 403 with an XML body; a tampered one 403 too', async () => {
    const r = await playback(sim, token, ids.two ?? '');
    const url = r.body.interactions[0]?.data.fileToPlayUrl ?? '';
    const tampered = await download(url.replace(/Signature=[^&]+/, 'Signature=AAAA'));
    assert.equal(tampered.status, 403);
    const expires = Number(new URL(url).searchParams.get('Expires')) * 1000;
    await sleep(Math.max(0, expires - Date.now() + 50)); // 15 platform minutes at scale 600: 1.5 s
    const expired = await download(url);
    assert.equal(expired.status, 403);
    assert.match(expired.headers.get('content-type') ?? '', /xml/);
    assert.match(expired.bytes.toString(), /<Error><Code>AccessDenied<\/Code>/);
  });

  test('403 for a user without the playback permission, before the id is looked up', async () => {
    const noPlay = (await login(sim, sim.accessKey({ playback: false }))).access_token;
    for (const id of [ids.plain ?? '', '123']) {
      const r = await playback(sim, noPlay, id);
      assert.equal(r.status, 403);
      assert.equal(typeof r.body.message, 'string');
      assert.doesNotMatch(r.body.message ?? '', /Play Any|permission/i);
    }
  });
});
