/**
 * The CXone client against the tenant simulator over real HTTP: the rate
 * limit, 429 pauses, token rotation, cursor loss, credentials and scopes.
 * Assertions are on counts, never on timings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';

import { CxoneClient } from '../../../src/cxone/client.js';
import { SlidingWindowRateLimiter } from '../../../src/cxone/rate-limiter.js';
import type { Recording } from '../../../src/cxone/wire.js';
import { CxrecError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { startSimulator, type RecordingSpec, type Simulator } from '../../../src/simulator/index.js';
import { clientFor, RecordingLimiter, runConcurrently, silentLogger } from './helpers.js';

const generous = (): SlidingWindowRateLimiter =>
  new SlidingWindowRateLimiter({ limit: 100_000, windowMs: 60_000 });

describe('CxoneClient against the simulator', { concurrency: false }, () => {
  describe('rate limit', () => {
    let sim: Simulator;
    before(async () => {
      sim = await startSimulator({ recordings: 30, rateLimit: { requests: 20, windowSeconds: 2 }, seed: 11 });
    });
    after(() => sim.stop());

    it('50 concurrent callers at the tenant limit meet no 429', async (t) => {
      const limiter = new SlidingWindowRateLimiter({ limit: 20, windowMs: 2000 });
      const client = clientFor(sim, limiter);
      const ids = sim.recordingIds();
      sim.resetStats();
      try {
        // 1 token + 59 detail calls: three windows' worth of the budget.
        await runConcurrently(50, 59, async (i) => {
          const detail = await client.detail(ids[i % ids.length]!);
          assert.equal(detail.recordingId, ids[i % ids.length]);
        });
      } finally {
        await client.close();
      }
      const stats = sim.stats();
      t.diagnostic(
        `429s ${stats.rateLimit.sent429}, peak accepted in 2 s ${stats.rateLimit.maxAcceptedInWindow}/20`,
      );
      assert.equal(stats.rateLimit.sent429, 0);
      assert.equal(client.apiStats.count('429'), 0);
      assert.ok(stats.rateLimit.maxAcceptedInWindow <= 20, `peak ${stats.rateLimit.maxAcceptedInWindow}`);
      assert.equal(client.apiStats.total(), 60);
    });

    it('a 429 storm pauses every caller until Retry-After has passed', async (t) => {
      sim.setRateLimit(false);
      sim.setFaults({ rateLimitBurst: 0.05 });
      const limiter = new RecordingLimiter(generous());
      const client = clientFor(sim, limiter);
      const ids = sim.recordingIds();
      sim.resetStats();
      try {
        await runConcurrently(50, 60, async (i) => {
          await client.detail(ids[i % ids.length]!);
        });
      } finally {
        await client.close();
        sim.setFaults('none');
      }
      const stats = sim.stats();
      t.diagnostic(
        `429s ${stats.rateLimit.sent429}, pauses ${limiter.pauses.length}, sent during pauses ${limiter.sentDuringPauses()}, ` +
          `server arrivals during Retry-After ${stats.rateLimit.arrivalsDuringRetryAfter}, in flight at pauses ${limiter.inFlightAtPauses()}`,
      );
      assert.ok(stats.rateLimit.sent429 > 0, 'the storm happened');
      assert.ok(limiter.pauses.length > 0);
      // What the client controls: not one request sent inside a pause it knew of.
      assert.equal(limiter.sentDuringPauses(), 0);
      // The server may still see requests that were already on their way when
      // it sent the 429; nothing beyond those.
      assert.ok(
        stats.rateLimit.arrivalsDuringRetryAfter <= limiter.inFlightAtPauses(),
        `${stats.rateLimit.arrivalsDuringRetryAfter} arrivals during Retry-After, ${limiter.inFlightAtPauses()} were in flight`,
      );
    });
  });

  describe('tokens', () => {
    let sim: Simulator;
    before(async () => {
      sim = await startSimulator({ recordings: 20, rateLimit: false, seed: 12 });
    });
    after(() => sim.stop());

    it('a token revoked mid-run costs one renewal and no failed call', async () => {
      const client = clientFor(sim, generous());
      const ids = sim.recordingIds();
      sim.resetStats();
      let done = 0;
      try {
        await runConcurrently(50, 200, async (i) => {
          await client.detail(ids[i % ids.length]!);
          if (++done === 60) sim.revokeAllTokens();
        });
      } finally {
        await client.close();
      }
      assert.equal(done, 200);
      assert.equal(client.tokens.renewals, 2);
      assert.equal(sim.stats().tokens.issued, 2);
    });

    it('renews a token before it expires', async () => {
      // Whole seconds: the simulator rounds expires_in up (1.5 s would read 2).
      const short = await startSimulator({ recordings: 5, rateLimit: false, tokenTtlMs: 2000, seed: 13 });
      const client = clientFor(short, generous());
      try {
        const id = short.recordingIds()[0]!;
        for (let i = 0; i < 6; i++) {
          await client.detail(id);
          await new Promise((resolve) => setTimeout(resolve, 400));
        }
        assert.ok(client.tokens.renewals >= 2);
        assert.equal(short.stats().calls.detail.byStatus['401'] ?? 0, 0);
      } finally {
        await client.close();
        await short.stop();
      }
    });

    it('a wrong secret is auth_failed naming CXONE_CLIENT_ID, never the secret', async () => {
      const secret = 'wrong-secret-d41d8cd98f00';
      const lines: string[] = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString('utf8'));
          done();
        },
      });
      const logger = createLogger({ level: 'debug', pretty: false, destination });
      const client = clientFor(sim, generous(), { clientSecret: secret, logger });
      try {
        await assert.rejects(client.detail(sim.recordingIds()[0]!), (err: unknown) => {
          assert.ok(err instanceof CxrecError);
          assert.equal(err.code, 'auth_failed');
          assert.equal(err.exitCode, 3);
          assert.match(err.message, /CXONE_CLIENT_ID/);
          assert.match(err.message, /cxrec-demo/);
          assert.doesNotMatch(err.message, new RegExp(secret));
          assert.doesNotMatch(JSON.stringify(err.context), new RegExp(secret));
          return true;
        });
        assert.ok(lines.length > 0, 'the refusal was logged');
        assert.doesNotMatch(lines.join(''), new RegExp(secret));
      } finally {
        await client.close();
      }
    });

    it('an unreachable host is unreachable (exit 3) after retries', async () => {
      const client = new CxoneClient({
        apiUrl: 'http://127.0.0.1:1',
        clientId: 'x',
        clientSecret: 'y',
        rateLimiter: generous(),
        backoffBaseMs: 5,
        retry: { maxAttempts: 3 },
        logger: silentLogger,
      });
      try {
        await assert.rejects(client.checkAccess(), (err: unknown) => {
          assert.ok(err instanceof CxrecError);
          assert.equal(err.code, 'unreachable');
          assert.equal(err.exitCode, 3);
          assert.equal(client.apiStats.count('network', 'token'), 3);
          return true;
        });
      } finally {
        await client.close();
      }
    });
  });

  describe('scopes', () => {
    let sim: Simulator;
    before(async () => {
      sim = await startSimulator({
        recordings: 5,
        rateLimit: false,
        seed: 14,
        clients: [
          { id: 'cxrec-demo', secret: 'demo-secret', scopes: ['recording:read', 'recording:download'] },
          // The admin bound recording:download to the client's user: the grant ignores it.
          {
            id: 'read-only',
            secret: 'ro-secret',
            scopes: ['recording:read'],
            userScopes: ['recording:download'],
          },
        ],
      });
    });
    after(() => sim.stop());

    const assertScopeMissing = (err: unknown): true => {
      assert.ok(err instanceof CxrecError);
      assert.equal(err.code, 'scope_missing');
      assert.equal(err.exitCode, 3);
      assert.match(err.message, /recording:download/);
      assert.match(err.message, /API client itself, not to a user/);
      assert.match(err.message, /Admin > Security > OAuth > API Clients > Scopes/);
      return true;
    };

    it('a client missing recording:download is scope_missing, and checkAccess says so', async () => {
      const client = clientFor(sim, generous(), { clientId: 'read-only', clientSecret: 'ro-secret' });
      try {
        assert.deepEqual(await client.checkAccess(), {
          grantedScopes: ['recording:read'],
          missingScopes: ['recording:download'],
        });
        await assert.rejects(client.search().next(), assertScopeMissing);
      } finally {
        await client.close();
      }
    });

    it('a 403 insufficient_scope is scope_missing too', async () => {
      // Ask only for recording:read, as a client configured for listing would.
      const client = clientFor(sim, generous(), { scopes: ['recording:read'] });
      try {
        await assert.rejects(client.downloadUrl(sim.recordingIds()[0]!, 'combined'), assertScopeMissing);
        assert.equal(client.apiStats.count('403', 'download_url'), 1);
      } finally {
        await client.close();
      }
    });

    it('checkAccess reports every scope for a complete client', async () => {
      const client = clientFor(sim, generous());
      try {
        assert.deepEqual(await client.checkAccess(), {
          grantedScopes: ['recording:read', 'recording:download'],
          missingScopes: [],
        });
      } finally {
        await client.close();
      }
    });
  });

  describe('search', () => {
    // 100 recordings, seven to a second, so page boundaries (pageSize 5)
    // cut through seconds and a restart from the watermark re-lists some.
    const base = Date.parse('2024-01-15T10:00:00Z');
    const specs: RecordingSpec[] = Array.from({ length: 100 }, (_, i) => ({
      id: `rec-${String(i).padStart(3, '0')}`,
      createdDate: new Date(base + Math.floor(i / 7) * 1000),
      status: 'Available',
    }));
    const window = { createdFrom: new Date(base), createdBefore: new Date(base + 3600_000), pageSize: 5 };
    let sim: Simulator;
    before(async () => {
      sim = await startSimulator({
        recordings: 0,
        extraRecordings: specs,
        rateLimit: false,
        listingInserts: false,
        createdFrom: new Date(base),
        createdTo: new Date(base + 3600_000),
        seed: 15,
      });
    });
    after(() => sim.stop());

    async function list(
      client: CxoneClient,
      sort: 'asc' | 'desc',
      onPage: (page: number) => void = () => undefined,
    ): Promise<Recording[]> {
      const all: Recording[] = [];
      for await (const page of client.search({ ...window, sort })) {
        all.push(...page.recordings);
        onPage(page.page);
      }
      return all;
    }

    for (const sort of ['asc', 'desc'] as const) {
      it(`a cursor invalidated on page 7 of 20 (${sort}) still yields every recording exactly once`, async () => {
        const client = clientFor(sim, generous());
        sim.resetStats();
        try {
          const all = await list(client, sort, (page) => {
            if (page === 6) sim.invalidateCursors();
          });
          const ids = all.map((r) => r.recordingId);
          assert.equal(new Set(ids).size, ids.length, 'no duplicates');
          assert.deepEqual([...ids].sort(), specs.map((s) => s.id).sort());
          assert.equal(client.apiStats.searchRestarts, 1);
          assert.equal(sim.stats().calls.search.byStatus['400'], 1);
          // The restart continued from the watermark: far fewer than 20 more pages.
          assert.ok((sim.stats().calls.search.byStatus['200'] ?? 0) < 20 + 8);
        } finally {
          await client.close();
        }
      });
    }

    it('drops duplicates the index produces while paging (inserts shifting pages)', async () => {
      const shifting = await startSimulator({
        recordings: 0,
        extraRecordings: specs,
        rateLimit: false,
        listingInserts: { probability: 1, count: 2, max: 10 },
        createdFrom: new Date(base),
        createdTo: new Date(base + 3600_000),
        seed: 16,
      });
      const client = clientFor(shifting, generous());
      try {
        for (const sort of ['desc', 'asc'] as const) {
          const all = await list(client, sort);
          const ids = all.map((r) => r.recordingId);
          assert.equal(new Set(ids).size, ids.length, `no duplicates (${sort})`);
          for (const s of specs) assert.ok(ids.includes(s.id!), `${s.id} listed (${sort})`);
        }
        assert.ok(client.apiStats.duplicatesDropped > 0, 'the index did produce duplicates');
      } finally {
        await client.close();
        await shifting.stop();
      }
    });

    it('percent-encodes hostile ids as one path segment', async () => {
      const client = clientFor(sim, generous());
      const hostile = ['../x', 'a/b', 'with space', 'ünï', '%2e%2e', '?q=1#f'];
      const ids = sim.addRecordings(
        hostile.map((id) => ({ id, createdDate: new Date(base), status: 'Available' })),
      );
      try {
        for (const id of ids) {
          assert.equal((await client.detail(id)).recordingId, id);
          assert.equal((await client.downloadUrl(id, 'combined')).channel, 'combined');
        }
        await assert.rejects(client.detail('no-such-recording'), { code: 'not_found' });
      } finally {
        await client.close();
      }
    });
  });

  it('refuses http:// on a non-loopback host', () => {
    assert.throws(
      () =>
        new CxoneClient({
          apiUrl: 'http://api.nice-incontact.com',
          clientId: 'x',
          clientSecret: 'y',
          rateLimiter: generous(),
          logger: silentLogger,
        }),
      (err: unknown) =>
        err instanceof CxrecError && err.code === 'config_invalid' && /CXONE_API_URL/.test(err.message),
    );
  });
});
