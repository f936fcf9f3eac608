import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { request } from 'undici';

import { startSimulator, type Simulator } from '../../../src/simulator/index.js';
import { accessToken, apiCall, downloadUrl, eventually, tokenFor } from './sim-client.js';

const noSpecials = {
  stillProcessing: 0,
  failed: 0,
  purged: 0,
  neverCaptured: 0,
  lateIndexed: 0,
  hostileIds: 0,
};

describe('token endpoint (contract §1)', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({
      recordings: 3,
      mix: noSpecials,
      rateLimit: false,
      clients: [
        { id: 'cxrec-demo', secret: 'demo-secret', scopes: ['recording:read', 'recording:download'] },
        { id: 'read-only', secret: 's3cr:t', scopes: ['recording:read'], userScopes: ['recording:download'] },
      ],
    });
  });
  after(() => sim.stop());

  test('form credentials get every bound scope when scope is omitted', async () => {
    const answer = await tokenFor(sim);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.scope, 'recording:read recording:download');
    assert.equal(answer.body.expires_in, 3600);
    assert.equal((answer.body as unknown as { token_type: string }).token_type, 'Bearer');
  });

  test('HTTP Basic credentials work instead of the body', async () => {
    const res = await request(`${sim.url}/api/v2/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`read-only:${encodeURIComponent('s3cr:t')}`).toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    assert.equal(res.statusCode, 200);
    assert.equal(((await res.body.json()) as { scope: string }).scope, 'recording:read');
  });

  test('the granted scope is the requested ones bound to the client; user scopes are ignored', async () => {
    assert.equal((await tokenFor(sim, { scope: 'recording:read' })).body.scope, 'recording:read');
    assert.equal((await tokenFor(sim, { scope: 'recording:read bogus' })).body.scope, 'recording:read');
    const ro = await tokenFor(sim, {
      client_id: 'read-only',
      client_secret: 's3cr:t',
      scope: 'recording:read recording:download',
    });
    assert.equal(ro.status, 200);
    assert.equal(ro.body.scope, 'recording:read');
  });

  test('unknown client or wrong secret: 401 invalid_client', async () => {
    for (const form of [{ client_secret: 'nope' }, { client_id: 'who' }]) {
      const answer = await tokenFor(sim, form);
      assert.equal(answer.status, 401);
      assert.deepEqual(answer.body, { error: 'invalid_client' });
    }
  });

  test('any other grant type: 400 unsupported_grant_type', async () => {
    const answer = await tokenFor(sim, { grant_type: 'password' });
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.body, { error: 'unsupported_grant_type' });
  });

  test('a token without recording:download gets 403 insufficient_scope on the download URL', async () => {
    const ro = await tokenFor(sim, { client_id: 'read-only', client_secret: 's3cr:t' });
    const [id = ''] = sim.recordingIds();
    assert.equal((await apiCall(sim, ro.body.access_token, `/api/v2/recording/${id}`)).status, 200);
    const answer = await downloadUrl(sim, ro.body.access_token, id);
    assert.equal(answer.status, 403);
    assert.deepEqual(answer.body, { error: 'insufficient_scope', required: 'recording:download' });
  });

  test('a missing or unknown bearer token: 401 invalid_token', async () => {
    const answer = await apiCall(sim, 'not-a-token', `/api/v2/recording/x`);
    assert.equal(answer.status, 401);
    assert.deepEqual(answer.body, { error: 'invalid_token' });
  });

  test('revokeAllTokens(): the next call gets 401 invalid_token, a new token works', async () => {
    const token = await accessToken(sim);
    const [id = ''] = sim.recordingIds();
    assert.equal((await apiCall(sim, token, `/api/v2/recording/${id}`)).status, 200);
    assert.ok(sim.revokeAllTokens() >= 1);
    assert.equal((await apiCall(sim, token, `/api/v2/recording/${id}`)).status, 401);
    assert.equal((await apiCall(sim, await accessToken(sim), `/api/v2/recording/${id}`)).status, 200);
  });
});

describe('token expiry and rotation', () => {
  test('a token is refused with 401 invalid_token once its (scaled) TTL has passed', async () => {
    const sim = await startSimulator({
      recordings: 1,
      mix: noSpecials,
      tokenTtlMs: 3_600_000,
      timeScale: 12_000,
    });
    try {
      const answer = await tokenFor(sim);
      assert.equal(answer.body.expires_in, 1); // 300 ms real, rounded up
      const [id = ''] = sim.recordingIds();
      await sleep(400);
      const refused = await apiCall(sim, answer.body.access_token, `/api/v2/recording/${id}`);
      assert.equal(refused.status, 401);
      assert.deepEqual(refused.body, { error: 'invalid_token' });
    } finally {
      await sim.stop();
    }
  });

  test('the tokenRevocation fault revokes valid tokens early, again and again', async () => {
    const sim = await startSimulator({ recordings: 1, mix: noSpecials, faults: { tokenRevocation: 1 } });
    try {
      const [id = ''] = sim.recordingIds();
      for (let i = 0; i < 3; i++) {
        const token = await accessToken(sim);
        assert.equal((await apiCall(sim, token, `/api/v2/recording/${id}`)).status, 401);
      }
      sim.setFaults('none');
      const ok = await eventually(async () => {
        const s = await apiCall(sim, await accessToken(sim), `/api/v2/recording/${id}`);
        return s.status === 200 ? s : undefined;
      });
      assert.equal(ok.status, 200);
      assert.equal(sim.stats().faults.tokenRevocation, 3);
    } finally {
      await sim.stop();
    }
  });
});
