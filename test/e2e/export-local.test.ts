/**
 * `cxrec export` end to end against the simulator into a local directory,
 * every stored byte checked against the simulator's truth.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startSimulator, type Simulator, type SimulatorTruth } from '../../src/simulator/index.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import type { JobRow } from '../../src/state/ledger.js';
import { recordingObjectKey } from '../../src/storage/keys.js';
import { fastSettings, runCli, startCli } from '../helpers/run-cli.js';

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p));
    }
  }
  await walk(dir);
  return out.sort();
}

async function ledgerRows(statePath: string): Promise<JobRow[]> {
  const ledger = await openLedger(parseStateTarget(statePath));
  try {
    return await ledger.list({});
  } finally {
    await ledger.close();
  }
}

/** Asserts the storage and ledger hold exactly what the truth says a correct exporter ends with. */
async function assertMatchesTruth(
  truth: SimulatorTruth,
  storageDir: string,
  statePath: string,
): Promise<void> {
  const rows = new Map((await ledgerRows(statePath)).map((r) => [r.recordingId, r]));
  const expectedFiles: string[] = [];
  for (const rec of truth.recordings) {
    const combined = rec.channels.find((c) => c.channel === 'combined');
    assert.ok(combined);
    const row = rows.get(rec.recordingId);
    assert.ok(row, `recording ${JSON.stringify(rec.recordingId)} missing from the ledger`);
    assert.equal(
      row.state,
      combined.expected,
      `${JSON.stringify(rec.recordingId)}: ${row.state} (${row.reason ?? ''}), truth says ${combined.expected}`,
    );
    if (combined.expected === 'stored') {
      const key = recordingObjectKey(rec.recordingId, 'combined', combined.contentType);
      expectedFiles.push(key);
      const bytes = await readFile(join(storageDir, key));
      assert.equal(bytes.length, combined.sizeBytes);
      assert.equal(createHash('md5').update(bytes).digest('hex'), combined.md5, `md5 of ${key}`);
      assert.equal(row.stored!.md5, combined.md5);
      assert.equal(row.stored!.sha256, combined.sha256);
    }
  }
  const files = (await listFiles(storageDir)).filter((f) => !f.startsWith('.partial'));
  assert.deepEqual(files, expectedFiles.sort(), 'exactly the expected objects are visible');
  assert.deepEqual(
    await listFiles(join(storageDir, '.partial')),
    [],
    '.partial is empty after an export that exits 0',
  );
}

describe('export to local storage', () => {
  let sim: Simulator;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let since: string;

  before(async () => {
    sim = await startSimulator({
      recordings: 60,
      seed: 7,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      media: { minBytes: 2048, maxBytes: 256 * 1024 },
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-'));
    since = (await sim.truth()).createdFrom;
    env = {
      ...fastSettings,
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
      CXREC_STORAGE: join(dir, 'store'),
      CXREC_STATE: join(dir, 'state.db'),
    };
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a clean export stores every retrievable recording with the right md5, and settles every other one', async () => {
    const res = await runCli(['export', '--since', since], env);
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.match(res.stdout, /Export finished/);
    await assertMatchesTruth(await sim.truth(), join(dir, 'store'), join(dir, 'state.db'));
    const stats = sim.stats();
    assert.equal(stats.rateLimit.sent429, 0);
  });

  test('running it again downloads nothing', async () => {
    const before = sim.stats().media.bytesServed;
    const res = await runCli(['export', '--since', since], env);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(sim.stats().media.bytesServed - before, 0);
    await assertMatchesTruth(await sim.truth(), join(dir, 'store'), join(dir, 'state.db'));
  });

  test('verify, manifest and status read what was stored', async () => {
    const verify = await runCli(['verify'], env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /0 mismatched or missing/);
    // Off a terminal, progress is JSON lines on stderr, the last one when it is done.
    const progress = verify.stderr
      .split('\n')
      .filter((l) => l.startsWith('{"progress"'))
      .map(
        (l) => (JSON.parse(l) as { progress: { phase: string; checked: number; total: number } }).progress,
      );
    const last = progress.at(-1);
    assert.equal(last?.phase, 'done', verify.stderr);
    assert.ok(last.total > 0);
    assert.equal(last.checked, last.total);

    const manifest = await runCli(['manifest', '--format', 'jsonl'], env);
    assert.equal(manifest.code, 0, manifest.stderr);
    const lines = manifest.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const truth = await sim.truth();
    const storedCount = truth.recordings.filter(
      (r) => r.channels.find((c) => c.channel === 'combined')?.expected === 'stored',
    ).length;
    assert.equal(lines.length, storedCount);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), [
        'recordingId',
        'channel',
        'key',
        'sizeBytes',
        'md5',
        'sha256',
        'storedAt',
      ]);
    }

    const status = await runCli(['status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const counts = JSON.parse(status.stdout) as { byState: Record<string, number>; backlog: number };
    assert.equal(counts.backlog, 0);
    assert.equal(counts.byState.stored, storedCount);
  });

  test('a corrupted stored object makes verify exit 1', async () => {
    const files = (await listFiles(join(dir, 'store'))).filter((f) => f.startsWith('recordings/'));
    const victim = join(dir, 'store', files[0]!);
    const { size } = await stat(victim);
    const { truncate } = await import('node:fs/promises');
    await truncate(victim, size - 1);
    const verify = await runCli(['verify'], env);
    assert.equal(verify.code, 1);
    assert.match(verify.stdout, /MISMATCH/);
  });
});

describe('export refuses what it must refuse', () => {
  let sim: Simulator;
  let dir: string;
  let base: NodeJS.ProcessEnv;

  before(async () => {
    sim = await startSimulator({
      recordings: 5,
      seed: 3,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      mix: { stillProcessing: 0, failed: 0, purged: 0, neverCaptured: 0, lateIndexed: 0, hostileIds: 0 },
      media: { minBytes: 2048, maxBytes: 8192 },
      clients: [
        { id: 'cxrec-demo', secret: 'demo-secret', scopes: ['recording:read', 'recording:download'] },
        {
          id: 'no-download',
          secret: 'nd-secret',
          scopes: ['recording:read'],
          userScopes: ['recording:download'],
        },
      ],
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-'));
    base = {
      ...fastSettings,
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
    };
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function envFor(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...base,
      CXREC_STORAGE: join(dir, name, 'store'),
      CXREC_STATE: join(dir, name, 'state.db'),
      ...extra,
    };
  }

  test('a media URL on a host that is not allowed is never contacted', async () => {
    sim.resetStats();
    const since = (await sim.truth()).createdFrom;
    const res = await runCli(
      ['export', '--since', since],
      envFor('hosts', { CXREC_MEDIA_HOSTS: 'media.example.com' }),
    );
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stdout, /CXREC_MEDIA_HOSTS does not allow/);
    assert.equal(sim.stats().calls.media.total, 0);
  });

  test('a wrong secret exits 3 naming CXONE_CLIENT_ID, never printing the secret', async () => {
    const since = (await sim.truth()).createdFrom;
    const res = await runCli(
      ['export', '--since', since],
      envFor('secret', { CXONE_CLIENT_SECRET: 'wrong-secret-123' }),
    );
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stderr, /CXONE_CLIENT_ID/);
    assert.ok(!(res.stderr + res.stdout).includes('wrong-secret-123'));
  });

  test('a client without recording:download exits 3 naming the scope', async () => {
    const since = (await sim.truth()).createdFrom;
    const res = await runCli(
      ['export', '--since', since],
      envFor('scope', { CXONE_CLIENT_ID: 'no-download', CXONE_CLIENT_SECRET: 'nd-secret' }),
    );
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stderr, /recording:download/);
  });

  test('bad dates and a future --until are usage errors', async () => {
    const env = envFor('usage');
    assert.equal((await runCli(['export', '--since', 'yesterday'], env)).code, 2);
    assert.equal((await runCli(['export'], env)).code, 2);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const res = await runCli(['export', '--since', '2024-01-01', '--until', future], env);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /in the future/);
  });

  test('a bad setting exits 2 naming the variable', async () => {
    const res = await runCli(['status'], envFor('bad', { CXREC_CONCURRENCY: 'zero' }));
    assert.equal(res.code, 2);
    assert.match(res.stderr, /CXREC_CONCURRENCY/);
  });
});

describe('export survives SIGKILL', () => {
  test('killed at random points and rerun, every retrievable recording ends stored exactly once', async () => {
    const sim = await startSimulator({
      recordings: 40,
      seed: 11,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      media: { minBytes: 256 * 1024, maxBytes: 1024 * 1024 },
      faults: 'light',
    });
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-kill-'));
    try {
      const since = (await sim.truth()).createdFrom;
      const env = {
        ...fastSettings,
        CXONE_API_URL: sim.url,
        CXONE_CLIENT_ID: 'cxrec-demo',
        CXONE_CLIENT_SECRET: 'demo-secret',
        CXREC_STORAGE: join(dir, 'store'),
        CXREC_STATE: join(dir, 'state.db'),
      };
      // Deterministic "random" kill points, spread over start-up, listing and downloads.
      for (const delayMs of [700, 1500, 2300, 1100, 3000]) {
        const run = startCli(['export', '--since', since], env);
        const timer = setTimeout(() => run.child.kill('SIGKILL'), delayMs);
        await run.done;
        clearTimeout(timer);
      }
      let last;
      for (let i = 0; i < 5; i++) {
        last = await runCli(['export', '--since', since], env);
        if (last.code === 0) break;
      }
      assert.equal(last?.code, 0, `${last?.stderr ?? ''}${last?.stdout ?? ''}`);
      await assertMatchesTruth(await sim.truth(), join(dir, 'store'), join(dir, 'state.db'));
    } finally {
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('export of several channels', () => {
  let sim: Simulator;
  let dir: string;

  before(async () => {
    sim = await startSimulator({
      recordings: 30,
      seed: 21,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      media: { minBytes: 2048, maxBytes: 64 * 1024 },
      mix: { stillProcessing: 0, failed: 0, purged: 0, lateIndexed: 0, neverCaptured: 0.3 },
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-channels-'));
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('an agent channel never captured falls back to one combined object', async () => {
    const truth = await sim.truth();
    const env = {
      ...fastSettings,
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
      CXREC_STORAGE: join(dir, 'fallback', 'store'),
      CXREC_STATE: join(dir, 'fallback', 'state.db'),
      CXREC_CHANNELS: 'agent',
    };
    const res = await runCli(['export', '--since', truth.createdFrom], env);
    assert.equal(res.code, 0, res.stderr + res.stdout);
    const rows = await ledgerRows(env.CXREC_STATE);
    const row = (id: string, channel: string) =>
      rows.find((r) => r.recordingId === id && r.channel === channel);
    let fellBack = 0;
    for (const rec of truth.recordings) {
      const agent = rec.channels.find((c) => c.channel === 'agent')!;
      const combined = rec.channels.find((c) => c.channel === 'combined')!;
      const agentRow = row(rec.recordingId, 'agent');
      assert.ok(agentRow, rec.recordingId);
      if (agent.captured && agent.expected === 'stored') {
        assert.equal(agentRow.state, 'stored');
        assert.equal(agentRow.stored!.md5, agent.md5);
        assert.equal(
          row(rec.recordingId, 'combined'),
          undefined,
          'no combined row when the agent channel exists',
        );
      } else if (!agent.captured) {
        fellBack++;
        assert.equal(agentRow.state, 'media_unavailable');
        assert.equal(agentRow.reason, 'fell back to combined');
        const combinedRow = row(rec.recordingId, 'combined');
        assert.equal(combinedRow?.state, combined.expected);
        if (combined.expected === 'stored') {
          assert.equal(combinedRow.stored!.md5, combined.md5);
          const bytes = await readFile(join(env.CXREC_STORAGE, combinedRow.stored!.key));
          assert.equal(createHash('md5').update(bytes).digest('hex'), combined.md5);
        }
      }
    }
    assert.ok(fellBack > 0, 'the simulator mix gave at least one recording without an agent channel');
  });

  test('with CXREC_CHANNEL_FALLBACK=none a missing channel ends media_unavailable and nothing else is fetched', async () => {
    const truth = await sim.truth();
    const env = {
      ...fastSettings,
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
      CXREC_STORAGE: join(dir, 'none', 'store'),
      CXREC_STATE: join(dir, 'none', 'state.db'),
      CXREC_CHANNELS: 'agent,caller',
      CXREC_CHANNEL_FALLBACK: 'none',
      CXREC_SIDECARS: 'true',
    };
    const res = await runCli(['export', '--since', truth.createdFrom], env);
    assert.equal(res.code, 0, res.stderr + res.stdout);
    const rows = await ledgerRows(env.CXREC_STATE);
    assert.ok(rows.every((r) => r.channel !== 'combined'));
    for (const rec of truth.recordings) {
      for (const ch of rec.channels.filter((c) => c.channel !== 'combined')) {
        const r = rows.find((x) => x.recordingId === rec.recordingId && x.channel === ch.channel);
        assert.equal(r?.state, ch.expected, `${rec.recordingId}/${ch.channel}`);
      }
    }
    const sidecars = (await listFiles(join(env.CXREC_STORAGE, 'metadata'))).length;
    const withStored = new Set(rows.filter((r) => r.state === 'stored').map((r) => r.recordingId)).size;
    assert.equal(sidecars, withStored, 'one sidecar per recording with a stored channel');
  });
});
