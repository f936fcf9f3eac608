/**
 * The SQLite-backed limiter across a restart, against the simulator's real
 * sliding window (20 requests per 2 s): a process that dies with its
 * window full (some requests never released) and one started at once on
 * the same ledger file must together stay within the tenant's limit,
 * while a clean restart after the window starts with the whole budget.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Database from 'better-sqlite3';
import { request } from 'undici';

import { parseStateTarget } from '../../../src/config.js';
import {
  SlidingWindowRateLimiter,
  type RateLimiter,
  type RatePermit,
} from '../../../src/cxone/rate-limiter.js';
import { startSimulator, type Simulator } from '../../../src/simulator/index.js';
import { readMigrations } from '../../../src/state/migration-files.js';
import { openRateLimiters } from '../../../src/state/open-state.js';
import { openSqliteLedger } from '../../../src/state/sqlite.js';
import {
  openSqliteRateLimiters,
  PersistedRateLimiter,
  type OpenSqliteRateLimitersOptions,
} from '../../../src/state/sqlite-rate-log.js';

const requests = 20;
const windowSeconds = 2;
const windowMs = windowSeconds * 1000;

let dir = '';
let files = 0;
/** A fresh ledger path per test. */
const newStatePath = (): string => join(dir, `state-${++files}.db`);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cxrec-rate-log-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The `api` budget alone on the ledger file at `path`, as the CLI opens it; `close` closes the file. */
function openSqliteRateLimiter(
  path: string,
  limit: number,
  options: OpenSqliteRateLimitersOptions & { windowMs?: number } = {},
): RateLimiter & { stats: PersistedRateLimiter['stats']; close(): Promise<void> } {
  const { windowMs = 60_000, ...rest } = options;
  const { limiters, close } = openSqliteRateLimiters(path, [{ name: 'api', limit, windowMs }], rest);
  const limiter = limiters.api;
  return {
    acquire: (o) => limiter.acquire(o),
    pauseFor: (ms, o) => limiter.pauseFor(ms, o),
    stats: () => limiter.stats(),
    close,
  };
}

/** One raw token request through `limiter`, as the client's transport sends it. */
async function tokenRequest(sim: Simulator, permit: RatePermit, release: boolean): Promise<number> {
  try {
    const res = await request(`${sim.url}/api/v2/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=cxrec-demo&client_secret=demo-secret',
    });
    await res.body.text();
    return res.statusCode;
  } finally {
    if (release) await permit.release();
  }
}

/** `count` requests, each on its own permit, all released when answered. */
async function burst(sim: Simulator, limiter: RateLimiter, count: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: count }, async () => tokenRequest(sim, await limiter.acquire(), true)),
  );
}

describe('SQLite rate-limit log', () => {
  test('a restart right after a crash counts the dead process’s requests: no 429', async (t) => {
    const sim = await startSimulator({ recordings: 1, rateLimit: { requests, windowSeconds } });
    t.after(() => sim.stop());
    const state = newStatePath();

    // The first process spends the whole window; 5 of its requests are
    // answered but never released (it dies with them "in flight"), and it
    // is dropped without close, as SIGKILL would leave it.
    const crashed = openSqliteRateLimiter(state, requests, { windowMs });
    const t0 = performance.now();
    const permits = await Promise.all(Array.from({ length: requests }, () => crashed.acquire()));
    const first = await Promise.all(permits.map((p, i) => tokenRequest(sim, p, i >= 5)));
    const crashedAt = performance.now();

    // The restarted process, at once, on the same file, wants a full window's worth.
    const restarted = openSqliteRateLimiter(state, requests, { windowMs });
    t.after(() => restarted.close());
    const firstGrant = restarted.acquire().then(async (p) => {
      const at = performance.now();
      await p.release({ sent: false });
      return at;
    });
    const second = await burst(sim, restarted, requests);
    const waitedMs = (await firstGrant) - crashedAt;

    const stats = sim.stats().rateLimit;
    t.diagnostic(
      `first process ${Math.round(crashedAt - t0)} ms, restarted one waited ${Math.round(waitedMs)} ms; ` +
        `429s ${stats.sent429}, peak arrivals in ${windowSeconds} s ${stats.maxArrivalsInWindow}/${requests}`,
    );
    assert.deepEqual(
      [...first, ...second].filter((s) => s !== 200),
      [],
    );
    assert.equal(stats.sent429, 0);
    assert.ok(stats.maxArrivalsInWindow <= requests, `${stats.maxArrivalsInWindow} arrivals in one window`);
    // Every slot was taken, so nothing could go before the first ones left the window.
    assert.ok(waitedMs >= windowMs - 100, `granted ${Math.round(waitedMs)} ms after the crash`);
  });

  test('a clean restart after the window has passed starts with the full budget', async (t) => {
    const sim = await startSimulator({ recordings: 1, rateLimit: { requests, windowSeconds } });
    t.after(() => sim.stop());
    const state = newStatePath();

    const before = openSqliteRateLimiter(state, requests, { windowMs });
    assert.deepEqual(
      (await burst(sim, before, requests)).filter((s) => s !== 200),
      [],
    );
    await before.close();
    await new Promise((resolve) => setTimeout(resolve, windowMs + 200));

    const after = openSqliteRateLimiter(state, requests, { windowMs });
    t.after(() => after.close());
    const t0 = performance.now();
    const permits = await Promise.all(Array.from({ length: requests }, () => after.acquire()));
    const grantedInMs = performance.now() - t0;
    assert.ok(grantedInMs < 200, `a full window granted in ${Math.round(grantedInMs)} ms`);
    const statuses = await Promise.all(permits.map((p) => tokenRequest(sim, p, true)));
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
    );
    const stats = sim.stats().rateLimit;
    assert.equal(stats.sent429, 0);
    assert.ok(stats.maxArrivalsInWindow <= requests);
  });

  test('rows: one per grant, finished at release, an unsent one removed, the stale ones pruned at start', async (t) => {
    const state = newStatePath();
    let wall = 1_000_000;
    const wallNow = (): number => wall;
    const rows = (): { acquired_at: number; done_at: number | null }[] => {
      const db = new Database(state, { readonly: true });
      try {
        return db
          .prepare<[], { acquired_at: number; done_at: number | null }>(
            'SELECT acquired_at, done_at FROM rate_limit_log ORDER BY id',
          )
          .all();
      } finally {
        db.close();
      }
    };

    const first = openSqliteRateLimiter(state, 10, { windowMs: 1000, marginMs: 0, wallNow });
    const a = await first.acquire();
    wall += 10;
    const b = await first.acquire();
    await first.acquire(); // dies in flight
    wall += 10;
    await a.release();
    await b.release({ sent: false });
    await b.release(); // idempotent: still removed, not finished
    assert.deepEqual(rows(), [
      { acquired_at: 1_000_000, done_at: 1_000_020 },
      { acquired_at: 1_000_010, done_at: null },
    ]);

    // The next start marks the dead request finished at its start and keeps both.
    wall += 500;
    const second = openSqliteRateLimiter(state, 10, { windowMs: 1000, marginMs: 0, wallNow });
    t.after(() => second.close());
    assert.deepEqual(rows(), [
      { acquired_at: 1_000_000, done_at: 1_000_020 },
      { acquired_at: 1_000_010, done_at: 1_000_520 },
    ]);
    assert.equal(second.stats().granted, 0);
    // A third start after the first row's window prunes it.
    wall = 1_001_100;
    const third = openSqliteRateLimiter(state, 10, { windowMs: 1000, marginMs: 0, wallNow });
    t.after(() => third.close());
    assert.deepEqual(rows(), [{ acquired_at: 1_000_010, done_at: 1_000_520 }]);
  });

  test('shares the file with the ledger, whichever opens first', async () => {
    const limiterFirst = newStatePath();
    const l1 = openSqliteRateLimiter(limiterFirst, 5);
    const ledger1 = await openSqliteLedger(limiterFirst);
    await (await l1.acquire()).release();
    assert.deepEqual(await ledger1.list({}), []);
    await ledger1.close();
    await l1.close();

    const ledgerFirst = newStatePath();
    const ledger2 = await openSqliteLedger(ledgerFirst);
    const l2 = openSqliteRateLimiter(ledgerFirst, 5);
    await (await l2.acquire()).release();
    await l2.close();
    await ledger2.close();
  });

  test('a failed write is logged and never fails the request', async (t) => {
    const state = newStatePath();
    const warnings: string[] = [];
    const limiter = openSqliteRateLimiter(state, 5, {
      logger: { warn: (_obj: unknown, msg?: string) => warnings.push(msg ?? '') },
    });
    t.after(() => limiter.close());
    // Another connection drops the table under it.
    const db = new Database(state);
    db.exec('DROP TABLE rate_limit_log');
    db.close();
    const permit = await limiter.acquire();
    await permit.release();
    assert.equal(warnings.length, 1, 'one warning, the next suppressed for a while');
    assert.match(warnings[0] ?? '', /rate-limit log: recording a grant failed/);
  });
});

describe('openRateLimiters with a SQLite ledger', () => {
  const api = (limit: number) => [{ name: 'api' as const, limit, windowMs: 60_000 }];

  test('a path gets the persisted limiter, whose close closes the file', async () => {
    const state = newStatePath();
    const { limiters, close } = await openRateLimiters(parseStateTarget(state), api(50));
    assert.ok(limiters.api instanceof PersistedRateLimiter);
    await (await limiters.api.acquire()).release();
    // SQLite removes the write-ahead log when the last connection to the
    // file closes: it exists while the limiter holds the file, and is gone
    // after close only if the connection really closed.
    assert.equal(existsSync(`${state}-wal`), true, 'the connection is open');
    await close();
    assert.equal(existsSync(`${state}-wal`), false, 'the connection was closed');
    // Closed: the file is free to reopen.
    await (await openRateLimiters(parseStateTarget(state), api(50))).close();
  });

  test(':memory: gets the plain in-process limiter', async () => {
    const { limiters, close } = await openRateLimiters(parseStateTarget(':memory:'), api(50));
    assert.ok(limiters.api instanceof SlidingWindowRateLimiter);
    await close();
  });

  test('a bad limit fails before the file is created; an unknown scheme is refused', async () => {
    const state = newStatePath();
    await assert.rejects(openRateLimiters(parseStateTarget(state), api(0)), { code: 'config_invalid' });
    assert.equal(existsSync(state), false);
    assert.throws(() => parseStateTarget('mysql://db/cxrec'), { code: 'config_invalid' });
  });

  test('two budgets keep their rows apart, including the ones from before budgets had names', async () => {
    const state = newStatePath();
    // A ledger written before migration 004 named budgets, with one API request just answered.
    const old = new Database(state);
    old.exec(
      'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of readMigrations('sqlite').filter((m) => m.version <= 3)) {
      old.exec(m.sql);
      old.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    old
      .prepare('INSERT INTO rate_limit_log (acquired_at, done_at) VALUES (?, ?)')
      .run(Date.now(), Date.now());
    old.close();
    const budgets = [
      { name: 'api' as const, limit: 1, windowMs: 60_000 },
      { name: 'playback' as const, limit: 1, windowMs: 60_000 },
    ];
    const { limiters, close } = await openRateLimiters(parseStateTarget(state), budgets);
    try {
      const apiGrant = limiters.api.acquire({ signal: AbortSignal.timeout(300) });
      await assert.rejects(apiGrant, { code: 'aborted' }, 'the earlier API request still counts');
      const playback = await limiters.playback.acquire({ signal: AbortSignal.timeout(10_000) });
      await playback.release();
      const rows = new Database(state, { readonly: true });
      try {
        assert.deepEqual(
          rows
            .prepare('SELECT budget, count(*) AS n FROM rate_limit_log GROUP BY budget ORDER BY budget')
            .all(),
          [
            { budget: 'api', n: 1 },
            { budget: 'playback', n: 1 },
          ],
        );
      } finally {
        rows.close();
      }
    } finally {
      await close();
    }
  });
});
