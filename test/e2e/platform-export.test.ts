/**
 * `cxrec export` end to end against the platform simulator (three hosts,
 * cxone-platform-api.md with its traps), into a local directory: every
 * stored byte checked against the simulator's truth, one row per master
 * contact, the budgets kept, and the operator's errors named.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  startPlatformSimulator,
  type PlatformSimulator,
  type PlatformTruth,
} from '../../src/simulator/platform/index.js';
import type { JobRow } from '../../src/state/ledger.js';
import { ledgerRows, platformEnv } from '../helpers/platform-e2e.js';
import { runCli } from '../helpers/run-cli.js';

/** Asserts the ledger and the storage hold exactly what the truth says a correct exporter ends with. */
async function assertMatchesTruth(
  truth: PlatformTruth,
  storageDir: string,
  statePath: string,
): Promise<void> {
  const rows = await ledgerRows(statePath);
  const inWindow = truth.masterContacts.filter(
    (m) => m.startDate >= truth.createdFrom && m.startDate < truth.createdTo,
  );
  assert.ok(inWindow.length > 0);
  for (const master of inWindow) {
    const row = rows.get(master.masterContactId);
    assert.ok(row, `master contact ${master.masterContactId} missing from the ledger`);
    assert.equal(row.channel, 'combined');
    assert.deepEqual(
      [...(row.meta.contactIds ?? [])].sort(),
      [...master.contactIds].sort(),
      `every leg of ${master.masterContactId} is kept`,
    );
    if (master.expected !== 'stored') {
      assert.equal(
        row.state,
        master.expected,
        `${master.masterContactId}: ${row.state} (${row.reason ?? ''})`,
      );
      continue;
    }
    for (const object of master.objects) {
      const id = `${master.masterContactId}${object.keySuffix}`;
      const objectRow: JobRow | undefined = id === master.masterContactId ? row : rows.get(id);
      assert.ok(objectRow, `row ${id} exists`);
      assert.equal(objectRow.state, object.expected, `${id}: ${objectRow.state} (${objectRow.reason ?? ''})`);
      if (object.expected !== 'stored') continue;
      assert.equal(objectRow.stored?.key, object.key);
      const bytes = await readFile(join(storageDir, object.key));
      assert.equal(bytes.length, object.sizeBytes, `size of ${object.key}`);
      assert.equal(createHash('md5').update(bytes).digest('hex'), object.md5, `md5 of ${object.key}`);
      assert.equal(objectRow.stored.sha256, object.sha256);
    }
  }
  // Nothing listed outside the phone master contacts of the truth: no chat, no leg rows.
  const known = new Set(
    truth.masterContacts.flatMap((m) => [
      m.masterContactId,
      ...m.objects.map((o) => `${m.masterContactId}${o.keySuffix}`),
    ]),
  );
  for (const id of rows.keys()) assert.ok(known.has(id), `unexpected ledger row ${id}`);
}

describe('the platform dialect: export to local storage', () => {
  let sim: PlatformSimulator;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let truth: PlatformTruth;

  before(async () => {
    sim = await startPlatformSimulator({
      recordings: 60,
      seed: 11,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      playbackLimit: { requests: 600, windowSeconds: 60 },
      media: { minBytes: 4096, maxBytes: 200 * 1024 },
      faults: 'light',
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-platform-'));
    truth = await sim.truth();
    // The simulator's processing takes at most 180 s / 600 of real time, under
    // the helper's CXREC_MAX_PROCESSING_MINUTES of 0.1.
    env = platformEnv(sim, dir, { CXREC_SIDECARS: 'true' });
  });

  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('stores every recorded call once, settles the rest, within both budgets', async () => {
    const res = await runCli(['export', '--since', truth.createdFrom, '--until', truth.createdTo], env);
    assert.equal(res.code, 0, res.stderr);
    await assertMatchesTruth(truth, join(dir, 'store'), join(dir, 'state.db'));
    const stats = sim.stats();
    assert.ok(stats.budgets.playback.peakAcceptedInWindow <= 600, 'never above the playback budget');
    assert.ok(stats.budgets.other.peakAcceptedInWindow <= 1200, 'never above the API budget');
    // The light fault profile injects 429 bursts; apart from those, none.
    if (stats.faults.rateLimitBurst === 0) {
      assert.equal(stats.budgets.playback.sent429 + stats.budgets.other.sent429, 0);
    }
    for (const secret of [env.CXONE_ACCESS_KEY_SECRET, env.CXONE_CLIENT_SECRET]) {
      assert.ok(!res.stderr.includes(secret!) && !res.stdout.includes(secret!), 'no secret in the output');
    }
    // Sidecars carry every leg's contactId.
    const stored = truth.masterContacts.find((m) => m.expected === 'stored' && m.contactIds.length > 1);
    if (stored) {
      const sidecar = JSON.parse(
        await readFile(join(dir, 'store', 'metadata', `${stored.masterContactId}.json`), 'utf8'),
      ) as { contact?: { contactIds: string[] } };
      assert.deepEqual([...(sidecar.contact?.contactIds ?? [])].sort(), [...stored.contactIds].sort());
    }
  });

  test('a rerun downloads nothing and asks playback nothing', async () => {
    sim.resetStats();
    const res = await runCli(['export', '--since', truth.createdFrom, '--until', truth.createdTo], env);
    assert.equal(res.code, 0, res.stderr);
    const stats = sim.stats();
    assert.equal(stats.media.bytesServed, 0);
    assert.equal(stats.calls.playback.total, 0);
  });

  test('verify and the manifest see the platform objects', async () => {
    const verify = await runCli(['verify'], env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const manifest = await runCli(['manifest', '--format', 'csv'], env);
    assert.equal(manifest.code, 0, manifest.stderr);
    const [header] = manifest.stdout.split('\n');
    assert.match(header ?? '', /^recordingId,channel,key,sizeBytes,md5,sha256,storedAt,contactIds,/);
  });

  test('a wrong access key, a wrong application and a missing permission exit 3 naming what to fix', async () => {
    const badKey = await runCli(['export', '--since', truth.createdFrom], {
      ...env,
      CXONE_ACCESS_KEY_SECRET: 'wrong+secret/==',
      CXREC_STATE: join(dir, 'other.db'),
    });
    assert.equal(badKey.code, 3, badKey.stderr);
    assert.match(badKey.stderr, /CXONE_ACCESS_KEY_ID/);
    assert.ok(!badKey.stderr.includes('wrong+secret/=='));

    const badApp = await runCli(['export', '--since', truth.createdFrom], {
      ...env,
      CXONE_CLIENT_SECRET: 'not-the-app-secret',
      CXREC_STATE: join(dir, 'other.db'),
    });
    assert.equal(badApp.code, 3, badApp.stderr);
    assert.match(badApp.stderr, /CXONE_CLIENT_ID/);

    const noPlayback = sim.accessKey({ playback: false });
    const denied = await runCli(['export', '--since', truth.createdFrom], {
      ...env,
      CXONE_ACCESS_KEY_ID: noPlayback.id,
      CXONE_ACCESS_KEY_SECRET: noPlayback.secret,
      CXREC_STATE: join(dir, 'denied.db'),
      CXREC_STORAGE: join(dir, 'denied'),
    });
    assert.equal(denied.code, 3, denied.stderr);
    assert.match(denied.stderr, /Play Any/);
  });

  test('doctor checks login, tenant, listing and playback', async () => {
    const ok = await runCli(['doctor'], env);
    assert.equal(ok.code, 0, ok.stdout);
    for (const name of ['login', 'tenant', 'listing', 'playback'])
      assert.match(ok.stdout, new RegExp(`ok\\s+${name}`));
    const noPlayback = sim.accessKey({ playback: false });
    const denied = await runCli(['doctor'], {
      ...env,
      CXONE_ACCESS_KEY_ID: noPlayback.id,
      CXONE_ACCESS_KEY_SECRET: noPlayback.secret,
    });
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /FAIL\s+playback/);
    assert.match(denied.stdout, /Roles and Permissions/);
  });
});
