/**
 * `cxrec run` against the platform simulator: passes after the first list
 * by `updatedSince` (cxone-platform-api.md §3), so calls that started hours
 * ago but were indexed just now are found while the service runs; and
 * three `run` processes on one PostgreSQL ledger, one SIGKILLed amid its
 * transfers and restarted (as a supervisor would),
 * together never above either budget, every recording stored
 * once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { parseStateTarget } from '../../src/config.js';
import { startPlatformSimulator, type CallSpec } from '../../src/simulator/platform/index.js';
import { openLedger } from '../../src/state/open-state.js';
import { assertPlatformInvariants, platformEnv, until } from '../helpers/platform-e2e.js';
import { createTestDatabase } from '../helpers/postgres-database.js';
import { startCli, type CliRun } from '../helpers/run-cli.js';

/** Settled: every truth master contact has a row, and none is left to do. */
async function settled(statePath: string, want: readonly string[]): Promise<boolean> {
  const ledger = await openLedger(parseStateTarget(statePath));
  try {
    const counts = await ledger.counts();
    if (counts.backlog > 0) return false;
    const have = new Set((await ledger.list({})).map((r) => r.recordingId));
    return want.every((id) => have.has(id));
  } finally {
    await ledger.close();
  }
}

/** Started `hoursAgo`, indexed only now (so its lastUpdateTime is now): only an updatedSince listing finds it. */
const startedHoursAgo = (hoursAgo: number): CallSpec => ({
  startDate: new Date(Date.now() - hoursAgo * 3_600_000),
  legDurationSeconds: 120,
  lateIndexMs: 1,
});

test('run lists by updatedSince after its first pass: calls indexed while it runs are stored once', async () => {
  const sim = await startPlatformSimulator({
    recordings: 12,
    seed: 61,
    timeScale: 600,
    media: { minBytes: 4096, maxBytes: 32 * 1024 },
    rateLimit: { requests: 1200, windowSeconds: 60 },
    playbackLimit: { requests: 600, windowSeconds: 60 },
    mix: { before2018Calls: 0 },
  });
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-platform-run-'));
  const statePath = join(dir, 'state.db');
  const env = platformEnv(sim, dir, { CXREC_DISCOVER_SECONDS: '0.3', CXREC_HTTP_PORT: '0' });
  let run: CliRun | undefined;
  try {
    run = startCli(['run'], env);
    const masters = async () => (await sim.truth()).masterContacts.map((m) => m.masterContactId);
    await until(async () => settled(statePath, await masters()), 60_000, 'the first pass settled');
    const passesBefore = sim.stats().calls['completed-contacts'].total;
    // Three batches, each while the service runs, each started hours before the watermark's overlap.
    for (const [i, hours] of [3, 5, 2].entries()) {
      sim.addCalls([
        startedHoursAgo(hours),
        startedHoursAgo(hours + 0.5),
        { ...startedHoursAgo(hours + 1), legs: 3 },
      ]);
      await until(async () => settled(statePath, await masters()), 30_000, `batch ${i + 1} settled`);
    }
    assert.ok(sim.stats().calls['completed-contacts'].total >= passesBefore + 3, 'several passes listed');
    run.child.kill('SIGTERM');
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);
    const truth = await sim.truth();
    await assertPlatformInvariants(sim, {
      storageDir: join(dir, 'store'),
      statePath,
      since: truth.createdFrom,
    });
    // Stored once: each object's bytes served once (a 1-byte probe aside), one successful playback per object.
    const stats = sim.stats();
    const stored = truth.masterContacts.filter((m) => m.expected === 'stored');
    const objects = stored.flatMap((m) => m.objects.filter((o) => o.expected === 'stored'));
    assert.equal(truth.masterContacts.filter((m) => m.origin === 'added').length, 12);
    for (const served of stats.media.objects) {
      // The simulator's media key is `{tenant}/{masterContactId}/{k}.{ext}`: interaction k has suffix -k (none for 1).
      const k = Number(served.key.split('/').pop()?.split('.')[0]);
      const master = stored.find((m) => m.masterContactId === served.masterContactId);
      const object = master?.objects.find((o) => o.keySuffix === (k === 1 ? '' : `-${k}`));
      assert.ok(object, `served ${served.key}, which is no stored object`);
      assert.ok(
        served.bytesServed <= object.sizeBytes + 1,
        `${served.key}: ${served.bytesServed} bytes served for ${object.sizeBytes}`,
      );
    }
    assert.ok(
      stats.playback.found <= objects.length + 2,
      `${stats.playback.found} playback answers for ${objects.length} objects`,
    );
  } finally {
    run?.child.kill('SIGKILL');
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('three run processes on one PostgreSQL ledger, one SIGKILLed mid-transfer: within both budgets, each stored once', async () => {
  const sim = await startPlatformSimulator({
    recordings: 36,
    seed: 67,
    timeScale: 600,
    media: { minBytes: 16 * 1024, maxBytes: 128 * 1024 },
    // Small shared budgets, so the three processes must share them to stay under.
    rateLimit: { requests: 40, windowSeconds: 60 },
    playbackLimit: { requests: 20, windowSeconds: 4 },
    mix: { before2018Calls: 0 },
  });
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-platform-fleet-'));
  const env = platformEnv(sim, dir, {
    CXREC_STATE: db.url,
    CXREC_RATE_LIMIT: '40',
    CXREC_PLAYBACK_LIMIT: '20',
    CXREC_PLAYBACK_WINDOW_SECONDS: '4',
    CXREC_DISCOVER_SECONDS: '0.5',
  });
  const fleet: CliRun[] = [];
  try {
    for (let i = 0; i < 3; i++) fleet.push(startCli(['run'], env));
    await until(() => sim.stats().media.objects.length >= 6, 60_000, 'transfers under way');
    fleet[0]!.child.kill('SIGKILL');
    // Restarted as a supervisor would: it takes back the dead process's leased rows at once
    // (otherwise they wait out the 60 s lease, then another process takes them).
    const restarted = startCli(['run'], { ...env, CXREC_LOG_LEVEL: 'info' });
    fleet.push(restarted);
    // SIGTERM before its handlers are installed would kill it outright: wait until it says it started.
    const up = new Promise<void>((resolve) => {
      const watch = (d: Buffer): void => {
        if (d.toString().includes('service started')) resolve();
      };
      restarted.child.stdout?.on('data', watch);
      restarted.child.stderr?.on('data', watch);
    });
    const truth = await sim.truth();
    const want = truth.masterContacts
      .filter((m) => m.startDate >= truth.createdFrom)
      .map((m) => m.masterContactId);
    await until(() => settled(db.url, want), 60_000, 'the fleet settled');
    await up;
    for (const run of fleet.slice(1)) run.child.kill('SIGTERM');
    for (const run of fleet.slice(1)) {
      const res = await run.done;
      assert.equal(res.code, 0, res.stderr);
    }
    assert.equal((await fleet[0]!.done).signal, 'SIGKILL');
    await assertPlatformInvariants(sim, {
      storageDir: join(dir, 'store'),
      statePath: db.url,
      since: truth.createdFrom,
    });
    const { budgets } = sim.stats();
    for (const name of ['playback', 'other'] as const) {
      const b = budgets[name];
      assert.ok(
        b.limit !== false && b.peakArrivalsInWindow <= b.limit.requests,
        `${name}: ${JSON.stringify(b)}`,
      );
      assert.equal(b.sent429, 0, `${name}: ${JSON.stringify(b)}`);
    }
  } finally {
    for (const run of fleet) run.child.kill('SIGKILL');
    await Promise.all(fleet.map((r) => r.done.catch(() => undefined)));
    await sim.stop();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
});
