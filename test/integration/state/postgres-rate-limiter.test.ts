/**
 * The shared rate limiter on the machine's real PostgreSQL
 * (CXREC_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres)
 * against the simulator's real sliding window. Several limiter instances,
 * each with its own pool, stand for several cxrec processes; the file gets
 * its own `cxrec_test_<random>` database, dropped after.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';
import { request } from 'undici';

import { parseStateTarget } from '../../../src/config.js';
import { SlidingWindowRateLimiter, type RatePermit } from '../../../src/cxone/rate-limiter.js';
import { CxrecError } from '../../../src/errors.js';
import { startSimulator } from '../../../src/simulator/index.js';
import { openRateLimiters } from '../../../src/state/open-state.js';
import {
  PostgresRateLimiter,
  rateLimitSettings,
  type PostgresRateLimiterOptions,
} from '../../../src/state/postgres-rate-limiter.js';

const adminUrl = process.env.CXREC_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `cxrec_test_${randomBytes(4).toString('hex')}`;
const dbUrl = (() => {
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Every limiter and pool a test opened, closed after it. */
const opened: { close(): Promise<void> }[] = [];

function limiter(
  options: Omit<PostgresRateLimiterOptions, 'database'>,
  ownPool = false,
): PostgresRateLimiter {
  // Half the instances get a pool from outside, as the CLI may share the ledger's.
  if (ownPool) {
    const pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
    const l = new PostgresRateLimiter({ database: pool, ...options });
    opened.push(l, { close: () => pool.end() });
    return l;
  }
  const l = new PostgresRateLimiter({ database: dbUrl, ...options });
  opened.push(l);
  return l;
}

async function closeAll(): Promise<void> {
  for (const o of opened.splice(0)) await o.close();
}

/** Slots the database holds for `tenantKey`, counting ones not yet pruned. */
async function slotsHeld(tenantKey: string): Promise<number> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      'SELECT count(*) AS n FROM rate_limit_slots WHERE tenant_key = $1 AND frees_at > clock_timestamp()',
      [tenantKey],
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

/** Resolves to whether `promise` settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await delay(ms);
  return settled;
}

before(async () => {
  await admin(`CREATE DATABASE ${dbName}`);
});

after(async () => {
  await closeAll();
  await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname = $1', [dbName]);
    assert.deepEqual(rows, [], 'no test database leaked');
  } finally {
    await client.end();
  }
});

describe('PostgresRateLimiter', () => {
  test('three processes share one budget: no 429 and the budget used', async (t) => {
    const requests = 30;
    const windowSeconds = 3;
    const sim = await startSimulator({ recordings: 1, rateLimit: { requests, windowSeconds } });
    t.after(async () => {
      await sim.stop();
      await closeAll();
    });
    const key = 'tenant-shared';
    const limiters = [0, 1, 2].map((i) =>
      limiter({ limit: requests, windowMs: windowSeconds * 1000, tenantKey: key }, i === 1),
    );
    await Promise.all(limiters.map((l) => l.ready()));

    // Four windows' worth, sent by 15 concurrent callers per process.
    const total = 4 * requests;
    let started = 0;
    const statuses: number[] = [];
    const t0 = performance.now();
    const worker = async (l: PostgresRateLimiter): Promise<void> => {
      while (started < total) {
        started++;
        const permit = await l.acquire();
        try {
          const res = await request(`${sim.url}/api/v2/oauth/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: 'grant_type=client_credentials&client_id=cxrec-demo&client_secret=demo-secret',
          });
          await res.body.text();
          statuses.push(res.statusCode);
        } finally {
          await permit.release();
        }
      }
    };
    await Promise.all(limiters.flatMap((l) => Array.from({ length: 15 }, () => worker(l))));
    const elapsedMs = performance.now() - t0;

    const stats = sim.stats().rateLimit;
    const perProcess = limiters.map((l) => l.stats());
    const windows = Math.floor(elapsedMs / (windowSeconds * 1000)) + 1;
    const budget = requests * windows;
    t.diagnostic(
      `${total} requests in ${Math.round(elapsedMs)} ms: 429s ${stats.sent429}, ` +
        `peak accepted in ${windowSeconds} s ${stats.maxAcceptedInWindow}/${requests}, ` +
        `budget used ${total}/${budget} (${Math.round((100 * total) / budget)} %), ` +
        `grants ${perProcess.map((s) => s.granted).join('/')}, acquire calls ${perProcess.map((s) => s.acquireCalls).join('/')}`,
    );
    assert.equal(stats.sent429, 0);
    assert.ok(stats.maxAcceptedInWindow <= requests);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
    );
    // Safety bounds the speed from below: 4 windows' worth need 3 full windows.
    assert.ok(elapsedMs >= 3 * windowSeconds * 1000, `took ${Math.round(elapsedMs)} ms`);
    assert.ok(total >= 0.8 * budget, `used ${total} of a ${budget}-request budget`);
    for (const s of perProcess) assert.ok(s.granted > 0, 'every process got a share');
    // Waiting callers do not poll: each process asks once per slot that can
    // free (the three may race for the same one), not once per waiting caller.
    const calls = perProcess.reduce((n, s) => n + s.acquireCalls, 0);
    assert.ok(calls <= limiters.length * total, `${calls} acquire calls for ${total} grants`);
  });

  test('a pause set by one process holds the others, then they start slowly', async (t) => {
    t.after(closeAll);
    const key = 'tenant-pause';
    const options = { limit: 10, windowMs: 200, tenantKey: key, rampPollMs: 50 };
    const [a, b, c] = [limiter(options), limiter(options), limiter(options, true)] as const;
    await Promise.all([a.ready(), b.ready(), c.ready()]);

    const t0 = performance.now();
    await a.pauseFor(1000);
    const first = await b.acquire();
    assert.ok(performance.now() - t0 >= 950, `granted after ${Math.round(performance.now() - t0)} ms`);

    // Slow start: one request in flight across all processes until it is answered.
    const second = c.acquire();
    assert.equal(await settlesWithin(second, 300), false, 'held while the probe is in flight');
    await first.release();
    const permits: RatePermit[] = [await second];
    // Answered with no new pause: now two may be in flight.
    permits.push(await b.acquire());
    const fourth = a.acquire();
    assert.equal(await settlesWithin(fourth, 300), false, 'the cap doubled to two, not more');
    await permits[0]?.release();
    permits.push(await fourth);
    for (const p of permits) await p.release();
  });

  test('a permit never released frees after its max in-flight time', async (t) => {
    t.after(closeAll);
    const key = 'tenant-crash';
    const options = { limit: 2, windowMs: 300, marginMs: 0, maxInFlightMs: 500, tenantKey: key };
    const crashed = limiter(options);
    const survivor = limiter(options);
    await Promise.all([crashed.ready(), survivor.ready()]);
    const t0 = performance.now();
    await crashed.acquire();
    await crashed.acquire();
    await crashed.close(); // the process dies with both permits out

    const permit = await survivor.acquire({ signal: AbortSignal.timeout(10_000) });
    const waited = performance.now() - t0;
    // Granted after t0, so freed no sooner than deadline (500 ms) + hold (300 ms) after it.
    assert.ok(waited >= 750, `freed after ${Math.round(waited)} ms`);
    await permit.release();
  });

  test('abort while waiting rejects and leaves no slot held', async (t) => {
    t.after(closeAll);
    const key = 'tenant-abort';
    const l = limiter({ limit: 1, windowMs: 60_000, tenantKey: key });
    const held = await l.acquire();

    const controller = new AbortController();
    const waiting = l.acquire({ signal: controller.signal });
    await delay(100);
    controller.abort();
    await assert.rejects(waiting, (err: unknown) => err instanceof CxrecError && err.code === 'aborted');
    assert.equal(l.stats().waiting, 0);
    assert.equal(await slotsHeld(key), 1, 'only the held permit');
    await held.release({ sent: false });
    assert.equal(await slotsHeld(key), 0, 'an unsent permit is returned at once');

    // Aborted while the grant is on its way: the slot goes back unused.
    const racing = new AbortController();
    const granted = l.acquire({ signal: racing.signal });
    racing.abort();
    await assert.rejects(granted, /cancelled/);
    await l.close(); // waits for the slot to be handed back
    assert.equal(await slotsHeld(key), 0);
  });

  test('closed: waiting callers are rejected and new ones refused', async (t) => {
    t.after(closeAll);
    const l = limiter({ limit: 1, windowMs: 60_000, tenantKey: 'tenant-close' });
    await l.acquire();
    const waiting = l.acquire();
    await delay(50);
    await l.close();
    await assert.rejects(waiting, /closed/);
    await assert.rejects(l.acquire(), /closed/);
  });

  test('an unreachable database fails acquire with a retryable error without the password', async () => {
    const l = new PostgresRateLimiter({
      database: 'postgres://cxrec:s3cret-pw@127.0.0.1:1/nowhere',
      limit: 5,
    });
    try {
      await assert.rejects(l.acquire(), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.retryable, true);
        assert.match(err.message, /127\.0\.0\.1:1/);
        assert.doesNotMatch(err.message, /s3cret-pw/);
        return true;
      });
    } finally {
      await l.close();
    }
  });
});

describe('rateLimitSettings', () => {
  test('defaults: a 60 s window plus 50 ms margin, 2 min in flight, one default tenant', () => {
    assert.deepEqual(rateLimitSettings({ limit: 50 }), {
      limit: 50,
      holdMs: 60_050,
      maxInFlightMs: 120_000,
      tenantKey: 'default',
      budget: 'api',
      key: 'default',
      rampPollMs: 500,
    });
  });

  test('the api budget keeps the bare tenant key; another budget adds its name', () => {
    assert.equal(rateLimitSettings({ limit: 5, tenantKey: 'api.example.com' }).key, 'api.example.com');
    assert.equal(
      rateLimitSettings({ limit: 5, tenantKey: 'api.example.com', budget: 'playback' }).key,
      'api.example.com#playback',
    );
  });

  test('refuses a limit that is not a whole number ≥ 1, and bad durations', () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => rateLimitSettings({ limit }), { code: 'config_invalid' });
    }
    assert.throws(() => rateLimitSettings({ limit: 5, windowMs: 0 }), { code: 'config_invalid' });
    assert.throws(() => rateLimitSettings({ limit: 5, marginMs: -1 }), { code: 'config_invalid' });
    assert.throws(() => rateLimitSettings({ limit: 5, maxInFlightMs: 0 }), { code: 'config_invalid' });
    assert.throws(() => rateLimitSettings({ limit: 5, tenantKey: '' }), { code: 'config_invalid' });
    assert.throws(() => rateLimitSettings({ limit: 5, budget: '' }), { code: 'config_invalid' });
  });
});

describe('openRateLimiters', () => {
  const api = (limit: number) => [{ name: 'api' as const, limit, windowMs: 60_000 }];

  test('postgres:// and postgresql:// share the budget through the database', async () => {
    for (const [i, url] of [dbUrl, dbUrl.replace(/^postgres:/, 'postgresql:')].entries()) {
      // Two "processes" on one database, one request per minute between them.
      const tenantKey = `tenant-open-${i}`;
      const a = await openRateLimiters(parseStateTarget(url), api(1), { tenantKey });
      const b = await openRateLimiters(parseStateTarget(url), api(1), { tenantKey });
      try {
        assert.ok(a.limiters.api instanceof PostgresRateLimiter);
        await (await a.limiters.api.acquire()).release();
        assert.equal(await slotsHeld(tenantKey), 1, 'the sent request holds its slot in the database');
        const waiting = new AbortController();
        const other = b.limiters.api.acquire({ signal: waiting.signal });
        assert.equal(await settlesWithin(other, 300), false, 'the other process waits for the same budget');
        waiting.abort();
        await assert.rejects(other, { code: 'aborted' });
      } finally {
        await a.close();
        await b.close();
      }
    }
  });

  test(':memory: gets the in-process limiter (a SQLite path: sqlite-rate-log.test.ts)', async () => {
    const { limiters, close } = await openRateLimiters({ kind: 'memory' }, api(50));
    assert.ok(limiters.api instanceof SlidingWindowRateLimiter);
    await close();
  });

  test('a bad limit or an unreachable database fails at open', async () => {
    await assert.rejects(openRateLimiters({ kind: 'memory' }, api(0)), { code: 'config_invalid' });
    await assert.rejects(openRateLimiters(parseStateTarget('postgres://127.0.0.1:1/nowhere'), api(50)), {
      retryable: true,
    });
  });
});
