import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { request } from 'undici';

import { hostileIdSamples, startSimulator, type Simulator } from '../../../src/simulator/index.js';
import { accessToken, apiCall, downloadUrl, eventually, waitPastExpires } from './sim-client.js';

async function fetchMedia(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('detail, download URL and media (contract §3–§5)', () => {
  let sim: Simulator;
  let token: string;
  before(async () => {
    sim = await startSimulator({
      recordings: 0,
      rateLimit: false,
      media: { minBytes: 20_000, maxBytes: 60_000 },
      extraRecordings: [
        { id: 'plain', channels: { combined: { sizeBytes: 50_000, etag: 'md5' }, caller: {}, agent: {} } },
        { id: 'multi', channels: { combined: { sizeBytes: 30_000, etag: 'multipart' } } },
        { id: 'no-etag', channels: { combined: { sizeBytes: 30_000, etag: 'none' } } },
        { id: 'mp3', channels: { combined: { sizeBytes: 30_000, contentType: 'audio/mpeg' } } },
        { id: 'agent-only', channels: { agent: {} } },
        { id: 'no-retention-field', retentionExpiresAt: null },
        { id: 'purged', purged: true },
        { id: 'recording-now', status: 'Recording', recordingMs: 3_600_000 },
        { id: 'processing-missing', status: 'Processing', processingMs: 3_600_000 },
        { id: 'failed', status: 'Failed' },
        ...hostileIdSamples.map((id) => ({ id })),
      ],
    });
    token = await accessToken(sim);
  });
  after(() => sim.stop());

  test('detail carries the search fields, availableChannels and retentionExpiresAt', async () => {
    const detail = await apiCall(sim, token, '/api/v2/recording/plain');
    assert.equal(detail.status, 200);
    assert.deepEqual(detail.body.availableChannels, ['combined', 'caller', 'agent']);
    assert.match(String(detail.body.retentionExpiresAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(detail.body.status, 'Available');
    const agentOnly = await apiCall(sim, token, '/api/v2/recording/agent-only');
    assert.deepEqual(agentOnly.body.availableChannels, ['agent']);
    const noField = await apiCall(sim, token, '/api/v2/recording/no-retention-field');
    assert.ok(!('retentionExpiresAt' in noField.body));
  });

  test('unknown ids: 404 not_found on detail and download URL', async () => {
    for (const path of ['/api/v2/recording/nope', '/api/v2/recording/nope/download?channel=combined']) {
      const answer = await apiCall(sim, token, path);
      assert.equal(answer.status, 404);
      assert.deepEqual(answer.body, { error: 'not_found' });
    }
  });

  test('hostile ids travel percent-encoded as one segment, through detail, URL and media', async () => {
    for (const id of hostileIdSamples) {
      const detail = await apiCall(sim, token, `/api/v2/recording/${encodeURIComponent(id)}`);
      assert.equal(detail.status, 200, id);
      assert.equal(detail.body.recordingId, id);
      const url = await downloadUrl(sim, token, id);
      assert.equal(url.status, 200, id);
      const media = await fetchMedia(url.body.url);
      assert.equal(media.status, 200, id);
      assert.equal(media.body.length, url.body.sizeBytes);
    }
    // Sent unencoded, `a/b` is two segments and names nothing.
    assert.equal((await apiCall(sim, token, '/api/v2/recording/a/b')).status, 404);
  });

  test('the download URL is presigned on the same server; the body matches its ETag and sizeBytes', async () => {
    const answer = await downloadUrl(sim, token, 'plain');
    assert.equal(answer.status, 200);
    const url = new URL(answer.body.url);
    assert.equal(url.origin, sim.url);
    assert.ok(url.pathname.startsWith('/media/'));
    assert.match(url.searchParams.get('Expires') ?? '', /^\d+$/);
    assert.ok(url.searchParams.get('Signature'));
    assert.deepEqual(
      { ...answer.body, url: '' },
      { url: '', contentType: 'audio/wav', sizeBytes: 50_000, channel: 'combined' },
    );
    const media = await fetchMedia(answer.body.url);
    assert.equal(media.status, 200);
    assert.equal(media.headers['content-length'], '50000');
    assert.equal(media.headers['content-type'], 'audio/wav');
    assert.equal(media.headers.etag, `"${md5(media.body)}"`);
    assert.equal(media.body.subarray(0, 4).toString('ascii'), 'RIFF');
    const truth = await sim.objectHashes('plain', 'combined');
    assert.equal(truth.md5, md5(media.body));
    assert.equal(truth.sha256, createHash('sha256').update(media.body).digest('hex'));
  });

  test('multipart ETags carry -N and no md5; some objects have no ETag; mp3 is audio/mpeg', async () => {
    const multi = await fetchMedia((await downloadUrl(sim, token, 'multi')).body.url);
    assert.match(String(multi.headers.etag), /^"[0-9a-f]{32}-\d+"$/);
    const none = await fetchMedia((await downloadUrl(sim, token, 'no-etag')).body.url);
    assert.equal(none.status, 200);
    assert.equal(none.headers.etag, undefined);
    const mp3 = await downloadUrl(sim, token, 'mp3');
    assert.equal(mp3.body.contentType, 'audio/mpeg');
    const mp3Media = await fetchMedia(mp3.body.url);
    assert.equal(mp3Media.headers['content-type'], 'audio/mpeg');
    assert.equal(mp3Media.body.subarray(0, 3).toString('ascii'), 'ID3');
  });

  test('Range: bytes=N- and bytes=N-M give 206 with Content-Range; past the end gives 416', async () => {
    const { url } = (await downloadUrl(sim, token, 'plain')).body;
    const whole = (await fetchMedia(url)).body;
    const tail = await fetchMedia(url, { range: 'bytes=49000-' });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers['content-range'], 'bytes 49000-49999/50000');
    assert.equal(tail.headers['content-length'], '1000');
    assert.deepEqual(tail.body, whole.subarray(49000));
    const mid = await fetchMedia(url, { range: 'bytes=17-40016' });
    assert.equal(mid.status, 206);
    assert.equal(mid.headers['content-range'], 'bytes 17-40016/50000');
    assert.deepEqual(mid.body, whole.subarray(17, 40017));
    const past = await fetchMedia(url, { range: 'bytes=50000-' });
    assert.equal(past.status, 416);
    assert.equal(past.headers['content-range'], 'bytes */50000');
    assert.ok(past.headers['content-length']);
  });

  test('a never-captured channel gets 200 and a URL to a bare header of ≤ 1024 bytes', async () => {
    const answer = await downloadUrl(sim, token, 'agent-only', 'combined');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.sizeBytes, 44);
    assert.equal(answer.body.contentType, 'audio/wav');
    const media = await fetchMedia(answer.body.url);
    assert.equal(media.status, 200);
    assert.equal(media.body.length, 44);
    assert.equal(media.body.subarray(0, 4).toString('ascii'), 'RIFF');
    const truth = await sim.truth();
    const rec = truth.recordings.find((r) => r.recordingId === 'agent-only');
    assert.ok(rec);
    assert.equal(rec.channels.find((c) => c.channel === 'combined')?.expected, 'media_unavailable');
    assert.equal(rec.channels.find((c) => c.channel === 'agent')?.expected, 'stored');
  });

  test('a channel must be named: combined, caller or agent', async () => {
    for (const path of [
      '/api/v2/recording/plain/download',
      '/api/v2/recording/plain/download?channel=both',
    ]) {
      const answer = await apiCall(sim, token, path);
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_request');
    }
  });

  test('purged by retention: still listed, URL still issued, media 404 NoSuchKey', async () => {
    const detail = await apiCall(sim, token, '/api/v2/recording/purged');
    assert.equal(detail.status, 200);
    assert.ok(Date.parse(String(detail.body.retentionExpiresAt)) < Date.now());
    const answer = await downloadUrl(sim, token, 'purged');
    assert.equal(answer.status, 200);
    const media = await fetchMedia(answer.body.url);
    assert.equal(media.status, 404);
    assert.match(media.body.toString(), /<Code>NoSuchKey<\/Code>/);
  });

  test('the Processing trap: Recording, Processing and Failed get a URL whose object is missing', async () => {
    for (const id of ['recording-now', 'processing-missing', 'failed']) {
      const answer = await downloadUrl(sim, token, id);
      assert.equal(answer.status, 200, id);
      const media = await fetchMedia(answer.body.url);
      if (id === 'processing-missing' && media.status === 200) {
        // This recording drew the other half of the trap: an object cut short.
        assert.ok(media.body.length < answer.body.sizeBytes);
      } else {
        assert.equal(media.status, 404, id);
        assert.match(media.body.toString(), /NoSuchKey/);
      }
    }
  });

  test('a bad signature or a missing one: 403 with an S3 XML error', async () => {
    const { url } = (await downloadUrl(sim, token, 'plain')).body;
    const bad = new URL(url);
    bad.searchParams.set('Signature', 'AAAA');
    const tampered = await fetchMedia(bad.toString());
    assert.equal(tampered.status, 403);
    assert.match(tampered.body.toString(), /<Code>SignatureDoesNotMatch<\/Code>/);
    const otherObject = new URL(url);
    otherObject.pathname = otherObject.pathname.replace('combined', 'caller');
    assert.equal((await fetchMedia(otherObject.toString())).status, 403);
    const bare = await fetchMedia(`${sim.url}${new URL(url).pathname}`);
    assert.equal(bare.status, 403);
    assert.match(bare.body.toString(), /AccessDenied/);
  });
});

describe('presigned URL expiry, lifecycle and determinism', () => {
  test('an expired URL gets 403 SignatureDoesNotMatch on a new request and on a Range request', async () => {
    const sim = await startSimulator({
      recordings: 0,
      presignedUrlTtlMs: 1,
      extraRecordings: [{ id: 'r', channels: { combined: { sizeBytes: 1000 } } }],
    });
    try {
      const token = await accessToken(sim);
      const { url } = (await downloadUrl(sim, token, 'r')).body;
      await waitPastExpires(url);
      for (const headers of [{}, { range: 'bytes=10-' }]) {
        const media = await fetchMedia(url, headers);
        assert.equal(media.status, 403);
        assert.match(media.body.toString(), /SignatureDoesNotMatch/);
      }
    } finally {
      await sim.stop();
    }
  });

  test('a transfer still running when Expires passes is cut off (socket destroyed)', async () => {
    const size = 48 * 1024 * 1024;
    const sim = await startSimulator({
      recordings: 0,
      presignedUrlTtlMs: 1000,
      extraRecordings: [{ id: 'big', channels: { combined: { sizeBytes: size } } }],
    });
    try {
      const token = await accessToken(sim);
      const { url } = (await downloadUrl(sim, token, 'big')).body;
      const res = await request(url);
      assert.equal(res.statusCode, 200);
      let received = 0;
      let failed = false;
      const iterator = res.body[Symbol.asyncIterator]();
      const firstChunk = await iterator.next();
      received += (firstChunk.value as Buffer | undefined)?.length ?? 0;
      await waitPastExpires(url); // the client stalls; the server's send buffer fills and the URL expires
      try {
        for (;;) {
          const chunk = await iterator.next();
          if (chunk.done === true) break;
          received += (chunk.value as Buffer).length;
        }
      } catch {
        failed = true;
      }
      assert.ok(failed || received < size, `received ${received} of ${size}`);
      assert.equal(sim.stats().calls.media.byStatus['expired-mid-transfer'], 1);
    } finally {
      await sim.stop();
    }
  });

  test('status moves Recording → Processing → Available with the scaled delays; media appears with Available', async () => {
    const sim = await startSimulator({
      recordings: 0,
      rateLimit: false,
      timeScale: 200,
      extraRecordings: [{ id: 'live', status: 'Recording', recordingMs: 60_000, processingMs: 60_000 }],
    });
    try {
      const token = await accessToken(sim);
      const seen: string[] = [];
      await eventually(async () => {
        const status = String((await apiCall(sim, token, '/api/v2/recording/live')).body.status);
        if (seen.at(-1) !== status) seen.push(status);
        return status === 'Available' ? true : undefined;
      });
      assert.equal(seen[0], 'Recording');
      assert.equal(seen.at(-1), 'Available');
      assert.ok(
        seen.every(
          (s, i) =>
            i === 0 ||
            ['Recording', 'Processing', 'Available'].indexOf(s) >
              ['Recording', 'Processing', 'Available'].indexOf(seen[i - 1] ?? ''),
        ),
      );
      const media = await fetchMedia((await downloadUrl(sim, token, 'live')).body.url);
      assert.equal(media.status, 200);
      const truth = (await sim.truth()).recordings[0];
      assert.deepEqual(
        truth?.statusTimeline.map((s) => s.status),
        ['Recording', 'Processing', 'Available'],
      );
    } finally {
      await sim.stop();
    }
  });

  test('the same seed builds the same tenant, byte for byte', async () => {
    const options = {
      recordings: 15,
      seed: 42,
      createdFrom: '2024-01-15T00:00:00Z',
      createdTo: '2024-01-16T00:00:00Z',
    };
    const a = await startSimulator(options);
    const b = await startSimulator(options);
    try {
      const [ta, tb] = [await a.truth(), await b.truth()];
      assert.deepEqual(
        ta.recordings.map((r) => ({ ...r, status: null, purged: null })),
        tb.recordings.map((r) => ({ ...r, status: null, purged: null })),
      );
      const c = await startSimulator({ ...options, seed: 43 });
      assert.notDeepEqual(c.recordingIds(), a.recordingIds());
      await c.stop();
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
