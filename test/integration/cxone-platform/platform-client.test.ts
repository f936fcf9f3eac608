/**
 * The platform client against a small issuer and API host that follow
 * `cxone-platform-api.md` over real HTTP: login, discovery, listing,
 * playback and the 429 pacing. Assertions are on requests and counts.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';

import {
  SlidingWindowRateLimiter,
  type RateLimiter,
  type RatePermit,
} from '../../../src/cxone/rate-limiter.js';
import { PlatformClient, type PlatformClientOptions } from '../../../src/cxone/platform/client.js';
import { CxrecError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { contact, playbackAnswer, PlatformTestServer } from './platform-server.js';

const generous = (): SlidingWindowRateLimiter =>
  new SlidingWindowRateLimiter({ limit: 100_000, windowMs: 60_000 });

/** A limiter that writes down every pause and how it was asked for. */
class PauseRecorder implements RateLimiter {
  readonly pauses: { ms: number; lowerPace: boolean }[] = [];
  constructor(private readonly inner: RateLimiter) {}
  acquire(options?: { signal?: AbortSignal | undefined }): Promise<RatePermit> {
    return this.inner.acquire(options);
  }
  async pauseFor(ms: number, options?: { lowerPace?: boolean }): Promise<void> {
    this.pauses.push({ ms, lowerPace: options?.lowerPace === true });
    await this.inner.pauseFor(ms, options);
  }
}

function logCapture(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    logger: createLogger({ level: 'debug', destination, pretty: false }),
    text: () => chunks.join(''),
  };
}

function clientFor(
  server: PlatformTestServer,
  overrides: Partial<PlatformClientOptions> = {},
): PlatformClient {
  return new PlatformClient({
    authUrl: server.issuerUrl,
    accessKeyId: server.accessKeyId,
    accessKeySecret: server.accessKeySecret,
    clientId: server.clientId,
    clientSecret: server.clientSecret,
    apiLimiter: generous(),
    playbackLimiter: generous(),
    backoffBaseMs: 20,
    logger: createLogger({ level: 'silent' }),
    ...overrides,
  });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<CxrecError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof CxrecError, `expected a CxrecError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

async function listAll(client: PlatformClient, query = {}): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let pages = 0;
  for await (const page of client.completedContacts(query)) {
    pages++;
    ids.push(...page.contacts.map((c) => c.contactId));
  }
  return { ids, pages };
}

describe('PlatformClient against a contract-following issuer and API host', { concurrency: false }, () => {
  let server: PlatformTestServer;
  before(async () => {
    server = await new PlatformTestServer().start();
  });
  after(() => server.stop());
  beforeEach(() => {
    server.requests.length = 0;
    server.contacts = [];
    server.playback.clear();
    server.errorSpelling = 'error_description';
    server.reportingPermission = true;
    server.playbackPermission = true;
    server.refuseRefresh = false;
    server.shortPages = false;
    server.foreignNextLinks = false;
    server.listing400 = undefined;
    server.playbackLimit = undefined;
    server.expiresIn = 3600;
  });

  describe('login and discovery', () => {
    it('logs in with a form-encoded secret and Basic auth, reads the tenant and discovers the API host once', async () => {
      const { logger, text } = logCapture();
      const client = clientFor(server, { logger });
      try {
        const connected = await client.connect();
        assert.equal(connected.tenantId, server.tenantId);
        assert.equal(new URL(connected.apiEndpoint).origin, server.apiUrl);
        assert.equal(client.tenantId, server.tenantId);
        server.contacts = [contact(1)];
        await listAll(client);
        await listAll(client);
      } finally {
        await client.close();
      }
      const [login] = server.grants('password');
      assert.ok(login);
      // + / = of the secret travel percent-encoded, never raw.
      assert.ok(
        login.body.includes('%2B') && login.body.includes('%2F') && login.body.includes('%3D'),
        login.body,
      );
      assert.ok(!login.body.includes('+') && !login.body.includes('/'), login.body);
      assert.equal(new URLSearchParams(login.body).get('password'), server.accessKeySecret);
      assert.equal(
        login.headers.authorization,
        `Basic ${Buffer.from(`${server.clientId}:${server.clientSecret}`).toString('base64')}`,
      );
      assert.equal(login.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(server.count('/.well-known/openid-configuration'), 1);
      assert.equal(server.count('/.well-known/cxone-configuration'), 1);
      assert.equal(server.count('/auth/token'), 1);
      const discovery = server.requests.find((r) => r.path === '/.well-known/cxone-configuration');
      assert.ok(discovery);
      assert.equal(discovery.query.get('tenantId'), server.tenantId);
      assert.equal(discovery.headers.authorization, undefined);
      const logged = text();
      assert.ok(logged.length > 0);
      for (const secret of [server.accessKeySecret, server.clientSecret, 'eyJ']) {
        assert.ok(!logged.includes(secret), `the log holds ${secret}`);
      }
    });

    it('CXONE_API_URL wins over discovery', async () => {
      const client = clientFor(server, { apiUrl: server.apiUrl });
      try {
        server.contacts = [contact(1)];
        assert.deepEqual((await listAll(client)).ids, ['500000001']);
        assert.equal(client.apiEndpoint, `${server.apiUrl}/`);
      } finally {
        await client.close();
      }
      assert.equal(server.count('/.well-known/cxone-configuration'), 0);
    });

    for (const spelling of ['error_description', 'errorDescription'] as const) {
      it(`a wrong application is exit 3 naming CXONE_CLIENT_ID, never the secret (${spelling})`, async () => {
        server.errorSpelling = spelling;
        const client = clientFor(server, { clientSecret: 'wr+ng/secret=' });
        try {
          const err = await rejectsWith(client.connect(), 'auth_failed');
          assert.equal(err.exitCode, 3);
          assert.match(err.message, /CXONE_CLIENT_ID/);
          assert.match(err.message, /CXONE_CLIENT_SECRET/);
          assert.match(err.message, /Client authentication failed/);
          assert.ok(!err.message.includes('wr+ng/secret='));
          assert.ok(!err.message.includes(server.accessKeySecret));
        } finally {
          await client.close();
        }
      });

      it(`a wrong access key is exit 3 naming CXONE_ACCESS_KEY_ID, never the secret (${spelling})`, async () => {
        server.errorSpelling = spelling;
        const client = clientFor(server, { accessKeySecret: 'n0t+the/key=' });
        try {
          const err = await rejectsWith(client.connect(), 'auth_failed');
          assert.equal(err.exitCode, 3);
          assert.match(err.message, /CXONE_ACCESS_KEY_ID/);
          assert.match(err.message, /invalid or inactive/);
          assert.doesNotMatch(err.message, /CXONE_CLIENT_ID/);
          assert.ok(!err.message.includes('n0t+the/key='));
          assert.ok(!err.message.includes(server.clientSecret));
        } finally {
          await client.close();
        }
      });
    }

    it('an unknown tenant is exit 3 pointing at CXONE_AUTH_URL', async () => {
      server.knownTenants.delete(server.tenantId);
      const client = clientFor(server);
      try {
        const err = await rejectsWith(client.connect(), 'tenant_unknown');
        assert.equal(err.exitCode, 3);
        assert.match(err.message, /CXONE_AUTH_URL/);
        assert.match(err.message, /cxone-gov/);
      } finally {
        server.knownTenants.add(server.tenantId);
        await client.close();
      }
    });

    it('an unreachable issuer is exit 3 naming CXONE_AUTH_URL', async () => {
      const client = clientFor(server, { authUrl: 'http://127.0.0.1:9', retry: { maxAttempts: 2 } });
      try {
        const err = await rejectsWith(client.connect(), 'unreachable');
        assert.equal(err.exitCode, 3);
        assert.match(err.message, /CXONE_AUTH_URL/);
      } finally {
        await client.close();
      }
    });

    it('a discovered api_endpoint must pass the URL policy', async () => {
      const original = server.apiUrl;
      server.apiUrl = 'http://api.example.com';
      const client = clientFor(server);
      try {
        const err = await rejectsWith(client.connect(), 'config_invalid');
        assert.match(err.message, /api_endpoint/);
      } finally {
        server.apiUrl = original;
        await client.close();
      }
    });

    it('renews before expiry with the refresh token, and logs in again when the refresh is refused', async () => {
      server.expiresIn = 1; // renewed after 0.9 s
      server.contacts = [contact(1)];
      const client = clientFor(server);
      try {
        await listAll(client);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await listAll(client);
        assert.equal(server.grants('refresh_token').length, 1);
        assert.equal(server.grants('refresh_token')[0]?.headers.authorization?.startsWith('Basic '), true);
        assert.equal(
          new URLSearchParams(server.grants('refresh_token')[0]?.body).get('client_id'),
          server.clientId,
        );
        server.refuseRefresh = true;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await listAll(client);
        assert.equal(server.grants('refresh_token').length, 2);
        assert.equal(server.grants('password').length, 2);
        assert.equal(client.login.refreshes, 1);
        assert.equal(client.login.logins, 2);
      } finally {
        await client.close();
      }
      assert.equal(server.count('/contacts/completed', 401), 0);
    });

    it('replays a call refused with 401 (body not JSON) once, with a renewed token, single flight', async () => {
      server.contacts = [contact(1)];
      const client = clientFor(server);
      try {
        await client.connect();
        server.revokeTokens();
        const results = await Promise.all(Array.from({ length: 5 }, () => listAll(client)));
        for (const r of results) assert.deepEqual(r.ids, ['500000001']);
      } finally {
        await client.close();
      }
      // One renewal for five callers (refresh, since the refresh token is still good).
      assert.equal(server.grants('refresh_token').length + server.grants('password').length, 2);
      assert.ok(server.count('/contacts/completed', 401) >= 1);
      assert.equal(server.count('/contacts/completed', 200), 5);
    });
  });

  describe('completed contacts', () => {
    it('pages with _links.next through short pages, with Z dates, mediaTypeId=4 and Accept json', async () => {
      server.contacts = Array.from({ length: 2500 }, (_, i) => contact(i));
      server.shortPages = true;
      const client = clientFor(server);
      try {
        const { ids, pages } = await listAll(client, {
          startDate: new Date('2024-01-15T00:00:00+02:00'),
          endDate: '2024-01-16T00:00:00Z',
        });
        // Short pages (999 rows) are not the last: every contact but the
        // dropped last rows of full pages arrives, in 3 calls.
        assert.equal(pages, 3);
        assert.equal(ids.length, 2500 - 2);
        assert.equal(new Set(ids).size, ids.length);
        assert.equal(client.budgetCalls().api, 3);
      } finally {
        await client.close();
      }
      const first = server.requests.find((r) => r.path.endsWith('/contacts/completed'));
      assert.ok(first);
      assert.equal(first.path, '/inContactAPI/services/v30.0/contacts/completed');
      assert.equal(first.query.get('startDate'), '2024-01-14T22:00:00.000Z');
      assert.equal(first.query.get('endDate'), '2024-01-16T00:00:00.000Z');
      assert.equal(first.query.get('mediaTypeId'), '4');
      assert.equal(first.query.get('top'), '1000');
      assert.equal(first.query.get('skip'), '0');
      assert.equal(first.query.get('orderBy'), 'contactStartDate asc');
      assert.match(first.headers.accept ?? '', /application\/json/);
    });

    it('does not follow a next link to another host: pages on the API host by skip', async () => {
      server.contacts = Array.from({ length: 25 }, (_, i) => contact(i));
      server.foreignNextLinks = true;
      const client = clientFor(server);
      try {
        const { ids, pages } = await listAll(client, { top: 10 });
        assert.equal(ids.length, 25);
        assert.equal(pages, 3);
      } finally {
        await client.close();
      }
      const skips = server.requests
        .filter((r) => r.path.endsWith('/contacts/completed'))
        .map((r) => r.query.get('skip'));
      assert.deepEqual(skips, ['0', '10', '20']);
    });

    it('204 is the empty listing', async () => {
      const client = clientFor(server);
      try {
        assert.deepEqual(await listAll(client, { updatedSince: '2024-01-15T00:00:00Z' }), {
          ids: [],
          pages: 0,
        });
      } finally {
        await client.close();
      }
      assert.equal(server.count('/contacts/completed', 204), 1);
    });

    it('normalises old spellings and string values', async () => {
      server.contacts = [
        {
          contactId: '2789879875',
          masterContactId: '2789879870',
          contactStart: '2024-01-15T10:31:07.123',
          lastUpdateTime: '2024-01-15T10:40:00Z',
          mediaType: '4',
          mediaTypeName: 'Call',
          agentId: '1001',
          skillId: '77',
          skillName: 'Billing',
          fromAddr: '5551230000',
          toAddr: 5559870000,
          isOutbound: 'True',
          totalDurationSeconds: '312',
          abandoned: 'False',
          isLogged: 'True',
          ACWSeconds: '5',
          confSeconds: '0',
        },
      ];
      const client = clientFor(server, { apiVersion: 'v25.0' });
      let listed;
      try {
        for await (const page of client.completedContacts()) listed = page;
      } finally {
        await client.close();
      }
      assert.ok(listed);
      assert.equal(listed.lastPollTime, '2024-01-15T12:00:00.000Z');
      assert.equal(listed.totalRecords, 1);
      assert.deepEqual(listed.contacts, [
        {
          contactId: '2789879875',
          masterContactId: '2789879870',
          contactStartDate: '2024-01-15T10:31:07.123Z',
          lastUpdateTime: '2024-01-15T10:40:00.000Z',
          mediaTypeId: 4,
          mediaTypeName: 'Call',
          agentId: '1001',
          skillId: '77',
          skillName: 'Billing',
          fromAddress: '5551230000',
          toAddress: '5559870000',
          isOutbound: true,
          totalDurationSeconds: 312,
          abandoned: false,
          isLogged: true,
        },
      ]);
      assert.ok(server.requests.some((r) => r.path === '/inContactAPI/services/v25.0/contacts/completed'));
    });

    it('a contact missing a needed field is a wire error naming it', async () => {
      const broken = contact(1);
      delete broken.contactStartDate;
      server.contacts = [broken];
      const client = clientFor(server);
      try {
        const err = await rejectsWith(listAll(client), 'invalid_response');
        assert.match(err.message, /contactStartDate/);
        assert.match(err.message, /contactStart\b/);
      } finally {
        await client.close();
      }
    });

    it('a 400 with an empty body says what icStatusDescription says', async () => {
      server.listing400 = 'Invalid skip value';
      const client = clientFor(server);
      try {
        const err = await rejectsWith(listAll(client), 'http_status');
        assert.match(err.message, /400/);
        assert.match(err.message, /Invalid skip value/);
      } finally {
        await client.close();
      }
    });

    it('403 is exit 3 naming the Reporting permission and where to grant it', async () => {
      server.reportingPermission = false;
      const client = clientFor(server);
      try {
        const err = await rejectsWith(listAll(client), 'permission_missing');
        assert.equal(err.exitCode, 3);
        assert.match(err.message, /Reporting/);
        assert.match(err.message, /Admin > Security > Roles and Permissions/);
      } finally {
        await client.close();
      }
    });
  });

  describe('media playback', () => {
    it('answers the voice interactions with a URL, by start time, on the playback budget', async () => {
      const media = `${server.apiUrl}/media`;
      server.playback.set(
        '500000001',
        playbackAnswer([
          { startTime: '2024-01-15T10:05:00.000Z', url: `${media}/second.mp4?X-Amz-Signature=b` },
          { startTime: '2024-01-15T10:00:00.000Z', url: `${media}/first.mp4?X-Amz-Signature=a` },
          { startTime: '2024-01-15T09:00:00.000Z', url: `${media}/screen.mp4`, mediaType: 'screen-only' },
          { startTime: '2024-01-15T09:30:00.000Z', url: '' },
        ]),
      );
      const client = clientFor(server);
      try {
        const ready = await client.playback('500000001');
        assert.ok(ready.kind === 'ready');
        assert.deepEqual(
          ready.interactions.map((i) => [i.url.replace(media, ''), i.startTime]),
          [
            ['/first.mp4?X-Amz-Signature=a', '2024-01-15T10:00:00.000Z'],
            ['/second.mp4?X-Amz-Signature=b', '2024-01-15T10:05:00.000Z'],
          ],
        );
        assert.deepEqual(await client.playback('500000002'), { kind: 'not_found' });
        assert.deepEqual(await client.probePlayback(), { granted: true });
        assert.deepEqual(client.budgetCalls(), { api: 0, playback: 3 });
      } finally {
        await client.close();
      }
      const call = server.requests.find((r) => r.path === '/media-playback/v1/contacts');
      assert.ok(call);
      assert.equal(call.query.get('acd-call-id'), '500000001');
      assert.equal(call.query.get('media-type'), 'voice-only');
      assert.equal(call.query.get('exclude-waveforms'), 'true');
      assert.equal(call.query.get('exclude-qm-categories'), 'true');
      assert.match(call.headers.accept ?? '', /application\/json/);
    });

    it('403 is exit 3 naming Play Any and where to grant it; the probe reports it', async () => {
      server.playbackPermission = false;
      const client = clientFor(server);
      try {
        const err = await rejectsWith(client.playback('500000001'), 'permission_missing');
        assert.equal(err.exitCode, 3);
        assert.match(err.message, /Search & Playback > Player > Play\/download recordings: Play Any/);
        assert.match(err.message, /Admin > Security > Roles and Permissions/);
        const probe = await client.probePlayback();
        assert.ok(!probe.granted);
        assert.match(probe.reason, /Play Any/);
      } finally {
        await client.close();
      }
    });

    it('429 without Retry-After pauses the playback budget with backoff and lowers its pace', async (t) => {
      // The limiter is set to twice the tenant's true limit.
      server.playbackLimit = { requests: 3, windowMs: 1000 };
      for (let i = 0; i < 8; i++)
        server.playback.set(
          String(i),
          playbackAnswer([{ startTime: '2024-01-15T10:00:00Z', url: `${server.apiUrl}/m/${i}.mp4` }]),
        );
      const playbackLimiter = new PauseRecorder(new SlidingWindowRateLimiter({ limit: 6, windowMs: 1000 }));
      const apiLimiter = new PauseRecorder(generous());
      const client = clientFor(server, { playbackLimiter, apiLimiter });
      try {
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => client.playback(String(i))));
        assert.ok(results.every((r) => r.kind === 'ready'));
      } finally {
        await client.close();
      }
      const refused = server.count('/media-playback/v1/contacts', 429);
      t.diagnostic(`429s ${refused}, pauses ${JSON.stringify(playbackLimiter.pauses)}`);
      assert.ok(refused > 0, 'the limit was reached');
      assert.equal(playbackLimiter.pauses.length, refused);
      assert.ok(playbackLimiter.pauses.every((p) => p.lowerPace && p.ms >= 1000));
      assert.equal(apiLimiter.pauses.length, 0, 'the other budget is not paused');
      assert.equal(server.count('/media-playback/v1/contacts', 200), 8);
    });
  });
});
