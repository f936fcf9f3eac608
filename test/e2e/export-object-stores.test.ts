/**
 * `cxrec export` end to end against the simulator (light faults) into S3
 * (s3rver behind the checking proxy, which holds every request to what real
 * S3 enforces) and Azure Blob (Azurite), under a prefix. Every stored
 * object is read back and checked against the simulator's truth; nothing
 * may land outside the prefix, no multipart upload may be left incomplete,
 * `verify` and `manifest` must agree, and a rerun downloads nothing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';

import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import type { JobRow } from '../../src/state/ledger.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import { recordingObjectKey } from '../../src/storage/keys.js';
import {
  createTestBucket,
  createTestContainer,
  startAzurite,
  startS3rver,
} from '../helpers/object-servers.js';
import { fastSettings, runCli } from '../helpers/run-cli.js';

/** `some/prefix` in the storage URL; every object must land under `some/prefix/`. */
const prefix = 'some/prefix';
/** Several S3 parts (8 MiB) and Azure blocks (8 MiB). */
const largeBytes = 20 * 1024 * 1024;

/** One object store as the test sees it, from outside cxrec. */
interface Backend {
  /** The settings that point cxrec at it. */
  env: NodeJS.ProcessEnv;
  /** Every name in the bucket or container, committed objects only. */
  listAll(): Promise<string[]>;
  /** The bytes of `name` (a full bucket/container name, prefix included). */
  read(name: string): Promise<Buffer>;
  /** Asserts nothing staged is left (S3: open multipart uploads) and nothing staged outside the prefix. */
  assertNoLeftovers(): Promise<void>;
  stop(): Promise<void>;
}

async function startS3Backend(): Promise<Backend> {
  const s3 = await startS3rver();
  // Set-up and reads go straight to s3rver, past the proxy's checks and tracking.
  const { bucket, admin, env } = await createTestBucket(s3, { name: 'e2e', prefix });
  return {
    env,
    listAll: async () => {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await admin.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
        keys.push(...(out.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : [])));
        token = out.NextContinuationToken;
      } while (token);
      return keys;
    },
    read: async (name) => {
      const out = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: name }));
      return Buffer.from(await out.Body!.transformToByteArray());
    },
    assertNoLeftovers: () => {
      assert.deepEqual(
        s3.proxy.violations.filter((v) => v.bucket === bucket),
        [],
        'every request met what S3 enforces',
      );
      assert.deepEqual(s3.proxy.openUploads(bucket), [], 'no multipart upload left incomplete');
      assert.ok(
        [...s3.proxy.uploads.values()].some(
          (u) => u.bucket === bucket && u.state === 'completed' && u.parts.size >= 3,
        ),
        'the large recording went up in several parts',
      );
      const outside = s3.proxy.keysWritten.filter(
        (k) => k.bucket === bucket && !k.key.startsWith(`${prefix}/`),
      );
      assert.deepEqual(outside, [], 'no write outside the prefix');
      return Promise.resolve();
    },
    stop: async () => {
      admin.destroy();
      await s3.stop();
    },
  };
}

async function startAzureBackend(): Promise<Backend> {
  const azurite = await startAzurite();
  const { admin, env } = await createTestContainer(azurite, { name: 'e2e', prefix });
  const list = async (includeUncommitedBlobs: boolean): Promise<string[]> => {
    const names: string[] = [];
    for await (const blob of admin.listBlobsFlat({ includeUncommitedBlobs })) names.push(blob.name);
    return names;
  };
  return {
    env,
    listAll: () => list(false),
    read: (name) => admin.getBlobClient(name).downloadToBuffer(),
    assertNoLeftovers: async () => {
      // Uncommitted blocks are allowed (the next commit or the service
      // discards them) but, like everything else, only under the prefix.
      const outside = (await list(true)).filter((n) => !n.startsWith(`${prefix}/`));
      assert.deepEqual(outside, [], 'nothing staged outside the prefix');
    },
    stop: () => azurite.stop(),
  };
}

async function ledgerRows(statePath: string): Promise<JobRow[]> {
  const ledger = await openLedger(parseStateTarget(statePath));
  try {
    return await ledger.list({});
  } finally {
    await ledger.close();
  }
}

for (const [name, start] of [
  ['S3 (s3rver behind the checking proxy)', startS3Backend],
  ['Azure Blob (Azurite)', startAzureBackend],
] as const) {
  describe(`export to ${name}`, () => {
    let sim: Simulator;
    let backend: Backend;
    let dir: string;
    let env: NodeJS.ProcessEnv;
    let since: string;
    let largeId: string;

    before(async () => {
      sim = await startSimulator({
        recordings: 30,
        seed: 17,
        timeScale: 600,
        rateLimit: { requests: 1200, windowSeconds: 60 },
        media: { minBytes: 2048, maxBytes: 256 * 1024 },
        faults: 'light',
      });
      [largeId = ''] = sim.addRecordings([
        { status: 'Available', channels: { combined: { sizeBytes: largeBytes } } },
      ]);
      backend = await start();
      dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-objects-'));
      since = (await sim.truth()).createdFrom;
      env = {
        ...fastSettings,
        ...backend.env,
        CXONE_API_URL: sim.url,
        CXONE_CLIENT_ID: 'cxrec-demo',
        CXONE_CLIENT_SECRET: 'demo-secret',
        CXREC_STATE: join(dir, 'state.db'),
      };
    });
    after(async () => {
      await backend.stop();
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    });

    /** Storage and ledger hold exactly what the truth says a correct exporter ends with. */
    async function assertMatchesTruth(): Promise<void> {
      const truth = await sim.truth();
      const rows = new Map((await ledgerRows(join(dir, 'state.db'))).map((r) => [r.recordingId, r]));
      const expected: string[] = [];
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
        if (combined.expected !== 'stored') continue;
        const key = `${prefix}/${recordingObjectKey(rec.recordingId, 'combined', combined.contentType)}`;
        expected.push(key);
        const bytes = await backend.read(key);
        assert.equal(bytes.length, combined.sizeBytes, `size of ${key}`);
        assert.equal(createHash('md5').update(bytes).digest('hex'), combined.md5, `md5 of ${key}`);
        assert.ok(row.stored, `${key}: stored without object details`);
        assert.equal(row.stored.md5, combined.md5);
        assert.equal(row.stored.sha256, combined.sha256);
      }
      assert.ok(
        truth.recordings.some(
          (r) =>
            r.recordingId === largeId &&
            r.channels.find((c) => c.channel === 'combined')?.expected === 'stored',
        ),
        'the 20 MiB recording is among the stored',
      );
      assert.deepEqual((await backend.listAll()).sort(), expected.sort(), 'exactly the expected objects');
      await backend.assertNoLeftovers();
    }

    test('a clean export stores every retrievable recording under the prefix, checked against the truth', async () => {
      const res = await runCli(['export', '--since', since], env);
      assert.equal(res.code, 0, res.stderr + res.stdout);
      await assertMatchesTruth();
      const faults = Object.values(sim.stats().faults).reduce((a, b) => a + b, 0);
      assert.ok(faults > 0, 'the light fault profile injected faults');
    });

    test('verify exits 0 and manifest lists every stored object', async () => {
      const verify = await runCli(['verify'], env);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /0 mismatched or missing/);

      const manifest = await runCli(['manifest', '--format', 'jsonl'], env);
      assert.equal(manifest.code, 0, manifest.stderr);
      const listed = manifest.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { key: string; sizeBytes: number; md5: string });
      const stored = (await backend.listAll()).map((k) => k.slice(prefix.length + 1)).sort();
      assert.deepEqual(listed.map((l) => l.key).sort(), stored);
      const large = listed.find((l) => l.key.startsWith(`recordings/${largeId}_`));
      assert.equal(large?.sizeBytes, largeBytes);
    });

    test('running it again downloads nothing and stores nothing new', async () => {
      const before = sim.stats().media.bytesServed;
      const res = await runCli(['export', '--since', since], env);
      assert.equal(res.code, 0, res.stderr + res.stdout);
      assert.equal(sim.stats().media.bytesServed - before, 0);
      await assertMatchesTruth();
    });
  });
}
