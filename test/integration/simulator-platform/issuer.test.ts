import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { startPlatformSimulator, type PlatformSimulator } from '../../../src/simulator/platform/index.js';
import { basic, claims, get, listing, login, tokenRequest } from './plat-client.js';

describe('platform issuer: login and tenant discovery (contract §1–§2)', () => {
  let sim: PlatformSimulator;
  before(async () => {
    sim = await startPlatformSimulator({ recordings: 5, timeScale: 3600, tokenTtlMs: 1_800_000 });
  });
  after(() => sim.stop());
  const app = () => sim.applications[0] ?? { id: '', secret: '' };
  const passwordForm = (id: string, secret: string) =>
    new URLSearchParams({ grant_type: 'password', username: id, password: secret }).toString();

  test('the OpenID document names the token endpoint and both client auth methods', async () => {
    const doc = await get(`${sim.urls.issuer}/.well-known/openid-configuration`);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.issuer, sim.urls.issuer);
    assert.equal(doc.body.token_endpoint, `${sim.urls.issuer}/auth/token`);
    assert.deepEqual(doc.body.token_endpoint_auth_methods_supported, [
      'client_secret_basic',
      'client_secret_post',
    ]);
  });

  test('password grant with Basic client auth: JWTs whose payload carries the tenant', async () => {
    const key = sim.accessKey();
    assert.match(key.secret, /\+/);
    assert.match(key.secret, /\//);
    assert.match(key.secret, /=/);
    const t = await login(sim);
    assert.equal(t.token_type, 'Bearer');
    assert.equal(t.expires_in, 1); // 30 min at time scale 3600, rounded up
    for (const jwt of [t.access_token, t.refresh_token, t.id_token]) {
      const c = claims(jwt);
      assert.equal(c.tenantId, sim.tenantId);
      assert.equal(c.icBUId, sim.businessUnitId);
      assert.equal(c.area, 'na1');
      assert.equal(typeof c.iat, 'number');
      assert.ok((c.exp as number) > (c.iat as number));
    }
  });

  test('client id/secret in the body work too; the refresh grant gives new tokens', async () => {
    const key = sim.accessKey();
    const first = await tokenRequest(
      sim,
      `${passwordForm(key.id, key.secret)}&client_id=${app().id}&client_secret=${app().secret}`,
    );
    assert.equal(first.status, 200);
    const refreshed = await tokenRequest(
      sim,
      new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: first.body.refresh_token,
        client_id: app().id,
      }).toString(),
      { authorization: basic(app().id, app().secret) },
    );
    assert.equal(refreshed.status, 200);
    assert.notEqual(refreshed.body.access_token, first.body.access_token);
    assert.equal((await listing(sim, refreshed.body.access_token, { top: '1' })).status, 200);
    const bogus = await tokenRequest(sim, 'grant_type=refresh_token&refresh_token=nope', {
      authorization: basic(app().id, app().secret),
    });
    assert.equal(bogus.status, 400);
    assert.equal(bogus.body.error, 'invalid_grant');
  });

  test('a secret sent without form-encoding (+ read as space) is a wrong access key: 400 invalid_grant', async () => {
    const key = sim.accessKey();
    const raw = `grant_type=password&username=${key.id}&password=${key.secret}`;
    const answer = await tokenRequest(sim, raw, { authorization: basic(app().id, app().secret) });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, 'invalid_grant');
    assert.equal(typeof (answer.body.errorDescription ?? answer.body.error_description), 'string');
  });

  test('wrong application: 401 invalid_client; deactivated key: 400 invalid_grant; other grants: 400 unsupported_grant_type', async () => {
    const key = sim.accessKey();
    const wrongApp = await tokenRequest(sim, passwordForm(key.id, key.secret), {
      authorization: basic(app().id, 'wrong'),
    });
    assert.equal(wrongApp.status, 401);
    assert.equal(wrongApp.body.error, 'invalid_client');
    const dead = sim.accessKey({ active: false });
    const deactivated = await tokenRequest(sim, passwordForm(dead.id, dead.secret), {
      authorization: basic(app().id, app().secret),
    });
    assert.equal(deactivated.status, 400);
    assert.equal(deactivated.body.error, 'invalid_grant');
    const cc = await tokenRequest(sim, 'grant_type=client_credentials', {
      authorization: basic(app().id, app().secret),
    });
    assert.equal(cc.status, 400);
    assert.equal(cc.body.error, 'unsupported_grant_type');
  });

  test('cxone-configuration gives the API host (another port) for the tenant, 404 for an unknown one', async () => {
    const doc = await get(`${sim.urls.issuer}/.well-known/cxone-configuration?tenantId=${sim.tenantId}`);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.api_endpoint, sim.urls.api);
    assert.notEqual(sim.urls.api, sim.urls.issuer);
    assert.equal(doc.body.tenantId, sim.tenantId);
    assert.equal(doc.body.area, 'na1');
    const unknown = await get(`${sim.urls.issuer}/.well-known/cxone-configuration?tenantId=nope`);
    assert.equal(unknown.status, 404);
  });

  test('login and the .well-known documents count against neither budget', async () => {
    sim.resetStats();
    await login(sim);
    await get(`${sim.urls.issuer}/.well-known/openid-configuration`);
    await get(`${sim.urls.issuer}/.well-known/cxone-configuration?tenantId=${sim.tenantId}`);
    const s = sim.stats();
    assert.equal(s.budgets.playback.arrivals + s.budgets.other.arrivals, 0);
    assert.equal(s.calls.token.byStatus['200'], 1);
  });

  test('revoked and expired tokens get 401, with an empty, non-JSON or JSON body', async () => {
    const t = await login(sim);
    assert.equal((await listing(sim, t.access_token, { top: '1' })).status, 200);
    assert.ok(sim.revokeAllTokens() >= 1);
    const bodies = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const r = await listing(sim, t.access_token, { top: '1' });
      assert.equal(r.status, 401);
      bodies.add(r.text === '' ? 'empty' : (r.body as unknown) === undefined ? 'not-json' : 'json');
    }
    assert.deepEqual([...bodies].sort(), ['empty', 'json', 'not-json']);
    // The refresh token survives an access-token revocation unless asked otherwise.
    const fresh = await login(sim);
    await sleep(600); // 30 platform minutes at time scale 3600 are 500 ms
    assert.equal((await listing(sim, fresh.access_token, { top: '1' })).status, 401);
    sim.revokeAllTokens({ refreshTokens: true });
    const refresh = await tokenRequest(
      sim,
      new URLSearchParams({ grant_type: 'refresh_token', refresh_token: fresh.refresh_token }).toString(),
      { authorization: basic(app().id, app().secret) },
    );
    assert.equal(refresh.status, 400);
  });
});
