/**
 * `cxrec run`, the service: alone on SQLite with its HTTP endpoints, and
 * three processes sharing one PostgreSQL ledger and one tenant budget, one
 * of them killed mid-transfer.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { request } from 'undici';

import { startSimulator, type Simulator, type SimulatorTruth } from '../../src/simulator/index.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import { recordingObjectKey } from '../../src/storage/keys.js';
import { createTestDatabase } from '../helpers/postgres-database.js';
import { startCli, type CliRun } from '../helpers/run-cli.js';

const noLateIndexing = { lateIndexed: 0 };

function baseEnv(sim: Simulator, dir: string, state: string): NodeJS.ProcessEnv {
  return {
    CXONE_API_URL: sim.url,
    CXONE_CLIENT_ID: 'cxrec-demo',
    CXONE_CLIENT_SECRET: 'demo-secret',
    CXREC_STORAGE: join(dir, 'store'),
    CXREC_STATE: state,
    CXREC_DISCOVER_SECONDS: '0.5',
    CXREC_POLL_SECONDS: '0.05',
    CXREC_BACKOFF_SECONDS: '0.05',
    CXREC_LOG_LEVEL: 'warn',
  };
}

function expectedStored(truth: SimulatorTruth): Map<string, { key: string; md5: string }> {
  const out = new Map<string, { key: string; md5: string }>();
  for (const r of truth.recordings) {
    const c = r.channels.find((x) => x.channel === 'combined');
    if (c?.expected === 'stored')
      out.set(r.recordingId, {
        key: recordingObjectKey(r.recordingId, 'combined', c.contentType),
        md5: c.md5,
      });
  }
  return out;
}

/** Waits until the ledger has no backlog and holds every recording the truth knows. */
async function waitSettled(state: string, truth: SimulatorTruth, deadlineMs: number): Promise<void> {
  const ledger = await openLedger(parseStateTarget(state));
  try {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const counts = await ledger.counts();
      const total = Object.values(counts.byState).reduce((a, b) => a + b, 0);
      if (counts.backlog === 0 && total >= truth.recordings.length) return;
      if (Date.now() > until) assert.fail(`not settled in time: ${JSON.stringify(counts.byState)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await ledger.close();
  }
}

async function assertStored(truth: SimulatorTruth, state: string, storeDir: string): Promise<void> {
  const expected = expectedStored(truth);
  const ledger = await openLedger(parseStateTarget(state));
  try {
    const rows = await ledger.list({});
    for (const r of truth.recordings) {
      const row = rows.find((x) => x.recordingId === r.recordingId && x.channel === 'combined');
      const c = r.channels.find((x) => x.channel === 'combined')!;
      assert.equal(
        row?.state,
        c.expected,
        `${r.recordingId}: ${row?.state ?? 'missing'} (${row?.reason ?? ''})`,
      );
    }
  } finally {
    await ledger.close();
  }
  for (const [, { key, md5 }] of expected) {
    const bytes = await readFile(join(storeDir, key));
    assert.equal(createHash('md5').update(bytes).digest('hex'), md5, key);
  }
  const files = await readdir(join(storeDir, 'recordings'));
  assert.equal(files.length, expected.size, 'each retrievable recording stored exactly once');
}

async function stop(run: CliRun): Promise<number | null> {
  run.child.kill('SIGTERM');
  return (await run.done).code;
}

describe('cxrec run', () => {
  test('alone on SQLite: discovers, downloads, serves /metrics, /healthz, /readyz, and stops cleanly on SIGTERM', async () => {
    const sim = await startSimulator({
      recordings: 40,
      seed: 31,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      media: { minBytes: 2048, maxBytes: 128 * 1024 },
      mix: noLateIndexing,
    });
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-run-'));
    const state = join(dir, 'state.db');
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const run = startCli(['run'], {
      ...baseEnv(sim, dir, state),
      CXREC_RATE_LIMIT: '1200',
      CXREC_HTTP_PORT: String(port),
    });
    try {
      const truth = await sim.truth();
      await waitSettled(state, truth, 60_000);
      const metrics = await (await request(`http://127.0.0.1:${port}/metrics`)).body.text();
      assert.match(metrics, /cxrec_recordings\{state="stored",reason="downloaded"\} \d+/);
      assert.match(metrics, /cxrec_api_calls_total\{endpoint="download_url",status="200"\} \d+/);
      assert.match(metrics, /cxrec_download_duration_seconds_bucket/);
      assert.match(metrics, /cxrec_backlog 0/);
      assert.equal((await request(`http://127.0.0.1:${port}/healthz`)).statusCode, 200);
      const ready = await request(`http://127.0.0.1:${port}/readyz`);
      assert.equal(ready.statusCode, 200);
      assert.equal(await ready.body.text(), 'ready\n');
      // The status page: the ledger's counts, and the API permits this process took in the last hour.
      const page = await request(`http://127.0.0.1:${port}/`);
      assert.equal(page.statusCode, 200);
      const html = await page.body.text();
      assert.match(html, new RegExp(`data-state="stored">${expectedStored(truth).size}<`));
      assert.match(html, /permits this process was granted/);
      assert.match(html, /busiest [1-9]\d* of 1200/);
      assert.equal(await stop(run), 0);
      await assertStored(await sim.truth(), state, join(dir, 'store'));
      assert.equal(sim.stats().rateLimit.sent429, 0);
    } finally {
      run.child.kill('SIGKILL');
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('three processes on one PostgreSQL ledger share the budget; one killed mid-transfer loses nothing', async () => {
    const limit = 90;
    const sim = await startSimulator({
      recordings: 100,
      seed: 41,
      timeScale: 600,
      rateLimit: { requests: limit, windowSeconds: 60 },
      media: { minBytes: 256 * 1024, maxBytes: 2 * 1024 * 1024 },
      mix: noLateIndexing,
    });
    const db = await createTestDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-run-pg-'));
    const env = { ...baseEnv(sim, dir, db.url), CXREC_RATE_LIMIT: String(limit), CXREC_CONCURRENCY: '2' };
    const runs = [startCli(['run'], env), startCli(['run'], env), startCli(['run'], env)];
    try {
      // Kill one process once downloads are under way.
      const until = Date.now() + 60_000;
      while (sim.stats().media.bytesServed < 2 * 1024 * 1024 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      runs[0]!.child.kill('SIGKILL');
      await runs[0]!.done;

      const truth = await sim.truth();
      await waitSettled(db.url, truth, 170_000);
      assert.equal(await stop(runs[1]!), 0);
      assert.equal(await stop(runs[2]!), 0);

      await assertStored(await sim.truth(), db.url, join(dir, 'store'));
      const stats = sim.stats();
      assert.equal(stats.rateLimit.sent429, 0, 'no 429');
      assert.ok(
        stats.rateLimit.maxArrivalsInWindow <= limit,
        `at most ${limit} requests in any 60 s window, saw ${stats.rateLimit.maxArrivalsInWindow}`,
      );
      const storedBytes = [...expectedStored(truth).values()].length;
      assert.ok(storedBytes > 0);
    } finally {
      for (const r of runs) r.child.kill('SIGKILL');
      await Promise.all(runs.map((r) => r.done));
      await sim.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
