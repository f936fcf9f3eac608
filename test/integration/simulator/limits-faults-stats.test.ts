import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { request } from 'undici';

import { CxrecError } from '../../../src/errors.js';
import { simulateCommand } from '../../../src/cli/simulate.js';
import {
  faultProfiles,
  startSimulator,
  type SimulatorStats,
  type SimulatorTruth,
} from '../../../src/simulator/index.js';
import { accessToken, apiCall, downloadUrl, tokenFor } from './sim-client.js';

const noSpecials = {
  stillProcessing: 0,
  failed: 0,
  purged: 0,
  neverCaptured: 0,
  lateIndexed: 0,
  hostileIds: 0,
};

describe('rate limit (contract §6)', () => {
  test('over the limit: 429 with whole-second Retry-After ≥ 1; refused requests do not count; token endpoint included', async () => {
    const sim = await startSimulator({
      recordings: 1,
      mix: noSpecials,
      rateLimit: { requests: 5, windowSeconds: 60 },
    });
    try {
      const token = await accessToken(sim); // 1
      const [id = ''] = sim.recordingIds();
      for (let i = 0; i < 4; i++)
        assert.equal((await apiCall(sim, token, `/api/v2/recording/${id}`)).status, 200);
      const refused = await apiCall(sim, token, `/api/v2/recording/${id}`);
      assert.equal(refused.status, 429);
      const retryAfter = String(refused.headers['retry-after']);
      assert.match(retryAfter, /^\d+$/);
      assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60);
      assert.equal((await tokenFor(sim)).status, 429);
      const stats = sim.stats();
      assert.equal(stats.rateLimit.sent429, 2);
      assert.equal(stats.rateLimit.maxArrivalsInWindow, 7);
      assert.equal(stats.rateLimit.maxAcceptedInWindow, 5);
      // The second refusal arrived while the first Retry-After was running.
      assert.equal(stats.rateLimit.arrivalsDuringRetryAfter, 1);
      // Media is not under /api/v2 and is not limited.
      sim.setRateLimit(false);
      const { url } = (await downloadUrl(sim, token, id)).body;
      sim.setRateLimit({ requests: 1, windowSeconds: 60 });
      await apiCall(sim, token, `/api/v2/recording/${id}`);
      const media = await request(url);
      await media.body.dump();
      assert.equal(media.statusCode, 200);
    } finally {
      await sim.stop();
    }
  });

  test('the window slides: once it has passed, requests are accepted again', async () => {
    const sim = await startSimulator({
      recordings: 1,
      mix: noSpecials,
      rateLimit: { requests: 2, windowSeconds: 0.3 },
    });
    try {
      await tokenFor(sim);
      await tokenFor(sim);
      assert.equal((await tokenFor(sim)).status, 429);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await tokenFor(sim)).status, 200);
    } finally {
      await sim.stop();
    }
  });
});

describe('faults', () => {
  test('profiles none, light and chaos exist and raise probabilities in that order', () => {
    for (const kind of Object.keys(faultProfiles.none) as (keyof typeof faultProfiles.none)[]) {
      assert.equal(faultProfiles.none[kind], 0);
      assert.ok(faultProfiles.light[kind] > 0 && faultProfiles.chaos[kind] > faultProfiles.light[kind]);
    }
  });

  test('serverError: API and media answer 500 or 503', async () => {
    const sim = await startSimulator({ recordings: 1, mix: noSpecials, rateLimit: false });
    try {
      const token = await accessToken(sim);
      const [id = ''] = sim.recordingIds();
      const { url } = (await downloadUrl(sim, token, id)).body;
      sim.setFaults({ serverError: 1 });
      assert.ok([500, 503].includes((await apiCall(sim, token, `/api/v2/recording/${id}`)).status));
      const media = await request(url);
      await media.body.dump();
      assert.ok([500, 503].includes(media.statusCode));
    } finally {
      await sim.stop();
    }
  });

  test('rateLimitBurst: 429s for a second or more even under the limit', async () => {
    const sim = await startSimulator({
      recordings: 1,
      mix: noSpecials,
      rateLimit: false,
      faults: { rateLimitBurst: 1 },
    });
    try {
      const answer = await tokenFor(sim);
      assert.equal(answer.status, 429);
      assert.ok(Number(answer.headers['retry-after']) >= 1);
    } finally {
      await sim.stop();
    }
  });

  test('connectionReset and shortBody cut media bodies before Content-Length', async () => {
    for (const kind of ['connectionReset', 'shortBody'] as const) {
      const sim = await startSimulator({
        recordings: 0,
        extraRecordings: [{ id: 'r', channels: { combined: { sizeBytes: 2 * 1024 * 1024 } } }],
      });
      try {
        const token = await accessToken(sim);
        const { url } = (await downloadUrl(sim, token, 'r')).body;
        sim.setFaults({ [kind]: 1 });
        let received = 0;
        let failed = false;
        try {
          const res = await request(url);
          for await (const chunk of res.body) received += (chunk as Buffer).length;
        } catch {
          failed = true;
        }
        assert.ok(failed, `${kind}: the client must notice (got ${received} bytes)`);
        assert.ok(received < 2 * 1024 * 1024);
        assert.equal(sim.stats().faults[kind], 1);
      } finally {
        await sim.stop();
      }
    }
  });

  test('connectionReset on the API cuts the JSON answer', async () => {
    const sim = await startSimulator({ recordings: 1, mix: noSpecials, faults: { connectionReset: 1 } });
    try {
      await assert.rejects(async () => {
        const res = await request(`${sim.url}/api/v2/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials&client_id=cxrec-demo&client_secret=demo-secret',
        });
        await res.body.json();
      });
    } finally {
      await sim.stop();
    }
  });

  test('faults are deterministic from the seed for a fixed request order', async () => {
    const run = async () => {
      const sim = await startSimulator({
        recordings: 1,
        seed: 5,
        mix: noSpecials,
        rateLimit: false,
        faults: { serverError: 0.5 },
      });
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await tokenFor(sim)).status);
      await sim.stop();
      return statuses;
    };
    const first = await run();
    assert.deepEqual(await run(), first);
    assert.ok(first.includes(200) && first.some((s) => s >= 500));
  });
});

describe('/__stats, /__truth and cxrec simulate', () => {
  test('stats and truth are served as JSON and match the handle; resetStats zeroes counters', async () => {
    const sim = await startSimulator({
      recordings: 20,
      seed: 9,
      mix: { ...noSpecials, purged: 0.1, failed: 0.1, neverCaptured: 0.1 },
      media: { minBytes: 2000, maxBytes: 4000 },
    });
    try {
      const token = await accessToken(sim);
      const id = sim.recordingIds()[0] ?? '';
      const { url } = (await downloadUrl(sim, token, id)).body;
      await (await request(url)).body.dump();
      const stats = (await (await request(`${sim.url}/__stats`)).body.json()) as SimulatorStats;
      assert.equal(stats.calls.token.byStatus['200'], 1);
      assert.equal(stats.calls.download.total, 1);
      assert.equal(stats.downloadUrlsIssued, 1);
      const obj = stats.media.objects.find((o) => o.recordingId === id);
      assert.ok(obj && obj.bytesServed > 0 && obj.requests === 1);
      assert.deepEqual(stats.rateLimit.limit, { requests: 50, windowSeconds: 60 });
      assert.deepEqual(sim.stats().calls, stats.calls);

      const truth = (await (await request(`${sim.url}/__truth`)).body.json()) as SimulatorTruth;
      assert.equal(truth.recordings.length, 20);
      assert.deepEqual(truth, { ...(await sim.truth()), generatedAt: truth.generatedAt });
      const outcomes = new Set(truth.recordings.flatMap((r) => r.channels.map((c) => c.expected)));
      assert.deepEqual([...outcomes].sort(), ['failed_processing', 'media_unavailable', 'purged', 'stored']);
      for (const r of truth.recordings) {
        if (r.finalStatus === 'Failed')
          assert.ok(r.channels.every((c) => c.expected === 'failed_processing'));
        for (const c of r.channels) assert.match(c.md5, /^[0-9a-f]{32}$/);
      }
      sim.resetStats();
      assert.equal(sim.stats().calls.token.total, 0);
      assert.equal(sim.stats().media.bytesServed, 0);
    } finally {
      await sim.stop();
    }
  });

  test('a 2 GiB object can be asked for and served by Range without hashing it', async () => {
    const size = 2 * 1024 ** 3;
    const sim = await startSimulator({
      recordings: 0,
      extraRecordings: [{ id: 'huge', channels: { combined: { sizeBytes: size } } }],
    });
    try {
      const token = await accessToken(sim);
      const answer = await downloadUrl(sim, token, 'huge');
      assert.equal(answer.body.sizeBytes, size);
      const res = await request(answer.body.url, { headers: { range: `bytes=${size - 100}-` } });
      assert.equal(res.statusCode, 206);
      assert.equal(res.headers['content-range'], `bytes ${size - 100}-${size - 1}/${size}`);
      assert.equal((await res.body.arrayBuffer()).byteLength, 100);
      assert.match(String(res.headers.etag), /-\d+"$/);
    } finally {
      await sim.stop();
    }
  });

  test('cxrec simulate rejects bad flag values with a usage error naming the flag', async () => {
    for (const [flag, value] of [
      ['--port', 'abc'],
      ['--port', '70000'],
      ['--recordings', '-1'],
      ['--seed', '1.5'],
      ['--faults', 'mayhem'],
    ] as const) {
      const command = simulateCommand().exitOverride();
      await assert.rejects(command.parseAsync([flag, value], { from: 'user' }), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'usage');
        assert.ok(err.message.includes(flag));
        return true;
      });
    }
  });
});
