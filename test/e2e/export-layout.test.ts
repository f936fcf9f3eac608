/**
 * `CXREC_LAYOUT`: with `date` every object (and sidecar) lands under the
 * UTC day of its recording's start, in local storage, S3 and Azure, for
 * both dialects; `verify` and `manifest` read the keys the ledger
 * remembers; and switching the setting (either way, with the ledger or
 * without it) downloads nothing and stores nothing new.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ListObjectsV2Command } from '@aws-sdk/client-s3';

import { startSimulator, type Simulator, type SimulatorTruth } from '../../src/simulator/index.js';
import { startPlatformSimulator, type PlatformSimulator } from '../../src/simulator/platform/index.js';
import { layoutFolder, recordingObjectKey, sidecarObjectKey } from '../../src/storage/keys.js';
import {
  createTestBucket,
  createTestContainer,
  startAzurite,
  startS3rver,
} from '../helpers/object-servers.js';
import { ledgerRows, platformEnv } from '../helpers/platform-e2e.js';
import { fastSettings, runCli } from '../helpers/run-cli.js';

const dayMs = 86_400_000;

/** A recording-api tenant whose recordings span four UTC days. */
function startTenant(recordings: number, seed: number): Promise<Simulator> {
  return startSimulator({
    recordings,
    seed,
    timeScale: 600,
    createdFrom: new Date(Date.now() - 3.5 * dayMs),
    rateLimit: { requests: 1200, windowSeconds: 60 },
    media: { minBytes: 2048, maxBytes: 64 * 1024 },
  });
}

function tenantEnv(sim: Simulator, statePath: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...fastSettings,
    CXONE_API_URL: sim.url,
    CXONE_CLIENT_ID: 'cxrec-demo',
    CXONE_CLIENT_SECRET: 'demo-secret',
    CXREC_STATE: statePath,
    ...extra,
  };
}

/** The dated keys of every stored recording of the truth, with their md5, and their sidecars. */
function datedTruth(truth: SimulatorTruth): {
  objects: Map<string, string>;
  sidecars: string[];
  days: Set<string>;
} {
  const objects = new Map<string, string>();
  const sidecars: string[] = [];
  const days = new Set<string>();
  for (const rec of truth.recordings) {
    const combined = rec.channels.find((c) => c.channel === 'combined');
    if (combined?.expected !== 'stored') continue;
    const folder = layoutFolder('date', rec.createdDate);
    days.add(folder);
    objects.set(recordingObjectKey(rec.recordingId, 'combined', combined.contentType, folder), combined.md5);
    sidecars.push(sidecarObjectKey(rec.recordingId, folder));
  }
  return { objects, sidecars: sidecars.sort(), days };
}

/** Every file under `dir` (but `.partial/`), relative and `/`-separated, with its mtime. */
async function snapshot(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const rel = relative(dir, path).split('\\').join('/');
    if (!rel.startsWith('.partial/')) out.set(rel, (await stat(path)).mtimeMs);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

async function manifestKeys(env: NodeJS.ProcessEnv): Promise<string[]> {
  const manifest = await runCli(['manifest', '--format', 'jsonl'], env);
  assert.equal(manifest.code, 0, manifest.stderr);
  return manifest.stdout
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { key: string }).key)
    .sort();
}

async function assertVerifies(env: NodeJS.ProcessEnv): Promise<void> {
  const verify = await runCli(['verify'], env);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /0 mismatched or missing/);
}

describe('CXREC_LAYOUT=date on local storage', () => {
  let sim: Simulator;
  let dir: string;
  let store: string;
  let since: string;
  const env = (layout: string, state = 'state.db'): NodeJS.ProcessEnv =>
    tenantEnv(sim, join(dir, state), { CXREC_STORAGE: store, CXREC_LAYOUT: layout, CXREC_SIDECARS: 'true' });

  before(async () => {
    sim = await startTenant(40, 23);
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-layout-'));
    store = join(dir, 'store');
    since = (await sim.truth()).createdFrom;
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('objects and sidecars land under the UTC day of each start; verify and manifest read them', async () => {
    const res = await runCli(['export', '--since', since], env('date'));
    assert.equal(res.code, 0, res.stderr + res.stdout);
    const { objects, sidecars, days } = datedTruth(await sim.truth());
    assert.ok(days.size >= 3, `the recordings span several days (${[...days].join(', ')})`);
    const files = [...(await snapshot(store)).keys()];
    assert.deepEqual(
      files.filter((f) => f.startsWith('recordings/')),
      [...objects.keys()].sort(),
      'exactly the stored recordings, each under its day',
    );
    assert.deepEqual(
      files.filter((f) => f.startsWith('metadata/')),
      sidecars,
      'each sidecar under its day',
    );
    for (const [key, md5] of objects) {
      assert.equal(
        createHash('md5')
          .update(await readFile(join(store, key)))
          .digest('hex'),
        md5,
        key,
      );
    }
    await assertVerifies(env('date'));
    assert.deepEqual(await manifestKeys(env('date')), [...objects.keys()].sort());
  });

  test('switching to flat and back downloads nothing and stores nothing new', async () => {
    const stored = await snapshot(store);
    for (const layout of ['flat', 'date']) {
      const served = sim.stats().media.bytesServed;
      const res = await runCli(['export', '--since', since], env(layout));
      assert.equal(res.code, 0, res.stderr + res.stdout);
      assert.equal(sim.stats().media.bytesServed - served, 0, `${layout}: no media fetched`);
      assert.deepEqual(await snapshot(store), stored, `${layout}: no object written or rewritten`);
    }
    await assertVerifies(env('flat'));
  });

  test('a new ledger with the other layout finds the stored objects instead of fetching them', async () => {
    const stored = await snapshot(store);
    const served = sim.stats().media.bytesServed;
    const res = await runCli(['export', '--since', since], env('flat', 'fresh.db'));
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.equal(sim.stats().media.bytesServed - served, 0, 'no media fetched');
    const after = await snapshot(store);
    assert.deepEqual([...after.keys()], [...stored.keys()], 'no new object, nothing under a flat key');
    for (const [key, mtime] of stored) {
      // Sidecars may be rewritten in place (a new ledger has new storedAt times); recordings never.
      if (key.startsWith('recordings/')) assert.equal(after.get(key), mtime, `${key} untouched`);
    }
    const { objects } = datedTruth(await sim.truth());
    assert.deepEqual(await manifestKeys(env('flat', 'fresh.db')), [...objects.keys()].sort());
  });
});

/** An object store as seen from outside cxrec: the settings pointing at it and its committed names. */
interface Bucket {
  env: NodeJS.ProcessEnv;
  list(): Promise<string[]>;
  stop(): Promise<void>;
}

const prefix = 'archive';

async function s3Bucket(): Promise<Bucket> {
  const s3 = await startS3rver();
  const { bucket, admin, env } = await createTestBucket(s3, { name: 'layout', prefix });
  return {
    env,
    // A few dozen objects: one page.
    list: async () =>
      ((await admin.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map(
        (o) => o.Key ?? '',
      ),
    stop: async () => {
      admin.destroy();
      await s3.stop();
    },
  };
}

async function azureContainer(): Promise<Bucket> {
  const azurite = await startAzurite();
  const { admin, env } = await createTestContainer(azurite, { name: 'layout', prefix });
  return {
    env,
    list: async () => {
      const names: string[] = [];
      for await (const blob of admin.listBlobsFlat()) names.push(blob.name);
      return names;
    },
    stop: () => azurite.stop(),
  };
}

for (const [name, open] of [
  ['S3 (s3rver behind the checking proxy)', s3Bucket],
  ['Azure Blob (Azurite)', azureContainer],
] as const) {
  describe(`CXREC_LAYOUT=date on ${name}`, () => {
    let sim: Simulator;
    let bucket: Bucket;
    let dir: string;
    let since: string;
    const env = (layout: string, state = 'state.db'): NodeJS.ProcessEnv =>
      tenantEnv(sim, join(dir, state), { ...bucket.env, CXREC_LAYOUT: layout });

    before(async () => {
      sim = await startTenant(16, 29);
      bucket = await open();
      dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-layout-objects-'));
      since = (await sim.truth()).createdFrom;
    });
    after(async () => {
      await bucket.stop();
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test('objects land under the prefix and their day; switching layouts or ledgers fetches nothing', async () => {
      const res = await runCli(['export', '--since', since], env('date'));
      assert.equal(res.code, 0, res.stderr + res.stdout);
      const expected = [...datedTruth(await sim.truth()).objects.keys()].sort();
      assert.ok(expected.length > 0);
      const listed = (await bucket.list()).sort();
      assert.deepEqual(
        listed,
        expected.map((k) => `${prefix}/${k}`),
      );
      await assertVerifies(env('date'));

      // The same ledger, then a new one (idempotency by looking at both layouts' keys).
      for (const state of ['state.db', 'fresh.db']) {
        const served = sim.stats().media.bytesServed;
        const again = await runCli(['export', '--since', since], env('flat', state));
        assert.equal(again.code, 0, again.stderr + again.stdout);
        assert.equal(sim.stats().media.bytesServed - served, 0, `flat with ${state}: no media fetched`);
        assert.deepEqual((await bucket.list()).sort(), listed, `flat with ${state}: nothing new stored`);
      }
      await assertVerifies(env('flat', 'fresh.db'));
    });
  });
}

describe('CXREC_LAYOUT=date with the platform dialect', () => {
  let sim: PlatformSimulator;
  let dir: string;

  before(async () => {
    sim = await startPlatformSimulator({
      recordings: 30,
      seed: 31,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      playbackLimit: { requests: 600, windowSeconds: 60 },
      media: { minBytes: 4096, maxBytes: 64 * 1024 },
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-layout-platform-'));
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('each call, and its -2 recordings, land under the day the contact started; a switch fetches nothing', async () => {
    const truth = await sim.truth();
    const window = ['--since', truth.createdFrom, '--until', truth.createdTo];
    const env = (layout: string): NodeJS.ProcessEnv =>
      platformEnv(sim, dir, { CXREC_LAYOUT: layout, CXREC_SIDECARS: 'true' });
    const res = await runCli(['export', ...window], env('date'));
    assert.equal(res.code, 0, res.stderr + res.stdout);

    const rows = await ledgerRows(join(dir, 'state.db'));
    const expected: string[] = [];
    let several = 0;
    for (const master of truth.masterContacts) {
      if (master.expected !== 'stored' || master.startDate < truth.createdFrom) continue;
      if (master.startDate >= truth.createdTo) continue;
      const folder = layoutFolder('date', master.startDate);
      if (master.objects.length > 1) several++;
      for (const object of master.objects) {
        if (object.expected !== 'stored') continue;
        // The truth's key is the flat one: `recordings/{master}{suffix}_combined.{ext}`.
        const key = `recordings/${folder}${object.key.slice('recordings/'.length)}`;
        expected.push(key);
        const row = rows.get(`${master.masterContactId}${object.keySuffix}`);
        assert.equal(row?.stored?.key, key, 'the ledger remembers the dated key');
        const bytes = await readFile(join(dir, 'store', key));
        assert.equal(createHash('md5').update(bytes).digest('hex'), object.md5, key);
      }
      if (master.objects[0]?.expected === 'stored') {
        assert.ok(
          (await snapshot(join(dir, 'store'))).has(`metadata/${folder}${master.masterContactId}.json`),
          `the sidecar of ${master.masterContactId} beside its object`,
        );
      }
    }
    assert.ok(several > 0, 'some call has several recordings (-2 keys)');
    const files = [...(await snapshot(join(dir, 'store'))).keys()].filter((f) => f.startsWith('recordings/'));
    assert.deepEqual(files, expected.sort());
    await assertVerifies(env('date'));

    const stored = await snapshot(join(dir, 'store'));
    sim.resetStats();
    const again = await runCli(['export', ...window], env('flat'));
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal(sim.stats().media.bytesServed, 0);
    assert.equal(sim.stats().calls.playback.total, 0);
    assert.deepEqual(await snapshot(join(dir, 'store')), stored, 'nothing new stored');
  });
});
