import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';

import { CxrecError } from '../../src/errors.js';
import type { ObjectStore, StagedUpload } from '../../src/storage/object-store.js';
import { minPartSizeBytes, openS3ObjectStore } from '../../src/storage/s3.js';
import { startS3rver, type RunningS3 } from '../helpers/object-servers.js';
import { objectStoreSuite } from './object-store.suite.js';

let s3: RunningS3;
let admin: S3Client;
const prefix = 'tenant-a/recs'; // no trailing slash: the store adds it

before(async () => {
  s3 = await startS3rver();
  // Set-up and listing go straight to s3rver, past the checks.
  admin = new S3Client({
    endpoint: s3.rawEndpoint,
    region: s3.region,
    credentials: s3.credentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
});

after(async () => {
  admin.destroy();
  await s3.stop();
});

async function listAll(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await admin.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    keys.push(...(out.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : [])));
    token = out.NextContinuationToken;
  } while (token);
  return keys;
}

async function newBucket(): Promise<string> {
  const bucket = `t-${randomBytes(6).toString('hex')}`;
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function dropBucket(bucket: string): Promise<void> {
  for (const key of await listAll(bucket))
    await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
}

function storeOptions(bucket: string) {
  return {
    bucket,
    prefix: `${prefix}/`,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: s3.credentials,
    forcePathStyle: true,
    partSizeBytes: minPartSizeBytes,
  };
}

/** What the checking proxy saw for `bucket`: nothing refused, nothing incomplete, nothing outside the prefix. */
function assertProxyClean(bucket: string): void {
  assert.deepEqual(
    s3.proxy.violations.filter((v) => v.bucket === bucket && v.problem !== 'corrupted on purpose'),
    [],
    'every request met what S3 enforces',
  );
  assert.deepEqual(s3.proxy.openUploads(bucket), [], 'no multipart upload left incomplete');
  const outside = s3.proxy.keysWritten.filter((k) => k.bucket === bucket && !k.key.startsWith(`${prefix}/`));
  assert.deepEqual(outside, [], 'no write outside the prefix');
}

objectStoreSuite(
  's3 (s3rver behind a checking proxy)',
  async () => {
    const bucket = await newBucket();
    return {
      store: await openS3ObjectStore(storeOptions(bucket)),
      reopen: () => openS3ObjectStore(storeOptions(bucket)),
      cleanup: () => dropBucket(bucket),
      listAllKeys: () => listAll(bucket),
      assertNoLeftovers: () => Promise.resolve(assertProxyClean(bucket)),
    };
  },
  {
    rootPrefix: `${prefix}/`,
    resumesAcrossCrash: false,
    keepsDigests: true,
    checksMd5AtCommit: true,
    // Two full parts and a short last one.
    largeObjectBytes: 2 * minPartSizeBytes + 123_457,
  },
);

describe('s3 store specifics', () => {
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

  it('a part refused on the wire (BadDigest) counts nothing; the retry completes the object', async () => {
    const bucket = await newBucket();
    const store = await openS3ObjectStore(storeOptions(bucket));
    try {
      const key = 'recordings/r1_combined.wav';
      const bytes = randomBytes(minPartSizeBytes + 1000);
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: bytes.length });
      await upload.write(bytes.subarray(0, 1000));
      s3.proxy.corruptNext = (operation) => operation === 'UploadPart';
      await assert.rejects(upload.write(bytes.subarray(1000, minPartSizeBytes + 10)), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'integrity');
        return true;
      });
      assert.equal(upload.bytesWritten, 1000);
      await upload.write(bytes.subarray(1000));
      await upload.commit({
        sizeBytes: bytes.length,
        md5: md5(bytes),
        sha256: sha(bytes),
        contentType: 'audio/wav',
      });
      const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${key}` }));
      assert.equal(got.Metadata?.md5, md5(bytes));
      assert.equal(got.ContentType, 'audio/wav');
      assert.equal(md5(Buffer.from(await got.Body!.transformToByteArray())), md5(bytes));
      assertProxyClean(bucket);
    } finally {
      await store.close?.();
      await dropBucket(bucket);
    }
  });

  it('opening a key again aborts an upload a killed attempt left that no row names', async () => {
    const bucket = await newBucket();
    const store = await openS3ObjectStore(storeOptions(bucket));
    try {
      const key = 'recordings/killed_combined.wav';
      const bytes = randomBytes(minPartSizeBytes + 1000);
      // The killed attempt: an upload created, a part sent, then nothing (no park, no abort, no token kept).
      const lost = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: bytes.length });
      await lost.write(bytes.subarray(0, minPartSizeBytes + 10));
      assert.equal(s3.proxy.openUploads(bucket).length, 1);
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: bytes.length });
      await upload.write(bytes);
      await upload.commit({
        sizeBytes: bytes.length,
        md5: md5(bytes),
        sha256: sha(bytes),
        contentType: 'audio/wav',
      });
      assertProxyClean(bucket);
    } finally {
      await store.close?.();
      await dropBucket(bucket);
    }
  });

  it('sweepStaging aborts only old uploads of ours under recordings/ that no row keeps', async () => {
    const bucket = await newBucket();
    const store = await openS3ObjectStore(storeOptions(bucket));
    const neighbour = await openS3ObjectStore({ ...storeOptions(bucket), prefix: 'other-tenant/' });
    const uploads: StagedUpload[] = [];
    try {
      const open = async (on: ObjectStore, key: string): Promise<StagedUpload> => {
        const upload = await on.openUpload(key, {
          contentType: 'audio/wav',
          sizeBytes: 2 * minPartSizeBytes,
        });
        await upload.write(randomBytes(minPartSizeBytes));
        await upload.park();
        uploads.push(upload);
        return upload;
      };
      const abandoned = await open(store, 'recordings/old_combined.wav');
      const kept = await open(store, 'recordings/kept_combined.wav');
      await open(store, 'recordings/young_combined.wav');
      const notRecordings = await open(store, 'metadata/old.wav');
      const outsidePrefix = await open(neighbour, 'recordings/old_combined.wav');
      const dayAndMore = new Date(Date.now() - 25 * 3_600_000);
      for (const u of [abandoned, kept, notRecordings, outsidePrefix]) {
        const tracked = s3.proxy.uploads.get(u.resumeToken.slice('s3-mpu:'.length));
        assert.ok(tracked);
        tracked.initiated = dayAndMore;
      }

      assert.equal(await store.sweepStaging!({ keepTokens: new Set([kept.resumeToken]) }), 1);
      const stillOpen = s3.proxy
        .openUploads(bucket)
        .map((u) => u.key)
        .sort();
      assert.deepEqual(stillOpen, [
        'other-tenant/recordings/old_combined.wav',
        `${prefix}/metadata/old.wav`,
        `${prefix}/recordings/kept_combined.wav`,
        `${prefix}/recordings/young_combined.wav`,
      ]);
      assert.deepEqual(
        s3.proxy.violations.filter((v) => v.bucket === bucket),
        [],
      );
    } finally {
      for (const u of uploads) await u.abort();
      await neighbour.close?.();
      await store.close?.();
      await dropBucket(bucket);
    }
  });

  it('sweepStaging pages through many uploads', async () => {
    const bucket = await newBucket();
    const store = await openS3ObjectStore({ ...storeOptions(bucket), abandonedUploadAfterMs: 0 });
    try {
      const keys = Array.from({ length: 1005 }, (_, i) => `${prefix}/recordings/r${i}_combined.wav`);
      // Tracked by the proxy as if created through it; 1 005 is past S3's page of 1 000.
      for (const [i, key] of keys.entries()) {
        s3.proxy.uploads.set(`fake-${bucket}-${i}`, {
          bucket,
          key,
          state: 'open',
          parts: new Map(),
          initiated: new Date(Date.now() - 1000),
        });
      }
      assert.equal(await store.sweepStaging!({ keepTokens: new Set() }), keys.length);
      assert.deepEqual(s3.proxy.openUploads(bucket), []);
    } finally {
      await store.close?.();
      await dropBucket(bucket);
    }
  });

  it('sweepStaging sweeps nothing, and does not fail, where ListMultipartUploads is not implemented', async () => {
    const bucket = await newBucket();
    // s3rver itself answers ListMultipartUploads with 501 NotImplemented.
    const store = await openS3ObjectStore({ ...storeOptions(bucket), endpoint: s3.rawEndpoint });
    try {
      assert.equal(await store.sweepStaging!({ keepTokens: new Set() }), 0);
    } finally {
      await store.close?.();
      await dropBucket(bucket);
    }
  });

  it('an upload opened small refuses to grow past one part', async () => {
    const bucket = await newBucket();
    const store = await openS3ObjectStore(storeOptions(bucket));
    try {
      const upload = await store.openUpload('recordings/r2_combined.wav', {
        contentType: 'audio/wav',
        sizeBytes: 10,
      });
      await assert.rejects(upload.write(randomBytes(minPartSizeBytes)), CxrecError);
      assert.equal(upload.bytesWritten, 0);
      await upload.abort();
      assertProxyClean(bucket);
    } finally {
      await store.close?.();
      await dropBucket(bucket);
    }
  });

  it('no prefix means the bucket top', async () => {
    const bucket = await newBucket();
    const store = await openS3ObjectStore({ ...storeOptions(bucket), prefix: '' });
    try {
      assert.equal(store.location, `s3://${bucket}/`);
      await store.putSmall('metadata/x.json', Buffer.from('{}'), { contentType: 'application/json' });
      assert.deepEqual(await listAll(bucket), ['metadata/x.json']);
    } finally {
      await store.close?.();
      await dropBucket(bucket);
    }
  });

  it('refuses a plain http:// endpoint that is not loopback', async () => {
    await assert.rejects(
      openS3ObjectStore({ ...storeOptions('b'), endpoint: 'http://s3.example.com' }),
      (err: unknown) =>
        err instanceof CxrecError && err.code === 'config_invalid' && /https/.test(err.message),
    );
    await assert.rejects(
      openS3ObjectStore({ ...storeOptions('b'), endpoint: 'http://user:secret@10.0.0.1:9000' }),
      (err: unknown) => err instanceof CxrecError && !err.message.includes('secret'),
    );
  });

  it('names the bucket and key, never a secret, when the bucket is missing', async () => {
    const store = await openS3ObjectStore(storeOptions('no-such-bucket-cxrec'));
    try {
      await assert.rejects(
        store.putSmall('metadata/y.json', Buffer.from('{}'), { contentType: 'application/json' }),
        (err: unknown) => {
          assert.ok(err instanceof CxrecError);
          assert.equal(err.code, 'storage');
          assert.match(err.message, /NoSuchBucket/);
          assert.match(err.message, /metadata\/y\.json/);
          assert.doesNotMatch(err.message, /S3RVER/);
          assert.equal(err.retryable, false);
          return true;
        },
      );
    } finally {
      await store.close?.();
    }
  });
});
