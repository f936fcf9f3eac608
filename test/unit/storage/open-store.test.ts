import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { CxrecError } from '../../../src/errors.js';
import { bucketAndPrefix, openObjectStore } from '../../../src/storage/open-store.js';

describe('bucketAndPrefix', () => {
  it('treats a trailing slash or none the same, and no prefix as the top', () => {
    assert.deepEqual(bucketAndPrefix('s3://b/a/c', 's3://', 'bucket'), { container: 'b', prefix: 'a/c/' });
    assert.deepEqual(bucketAndPrefix('s3://b/a/c/', 's3://', 'bucket'), { container: 'b', prefix: 'a/c/' });
    assert.deepEqual(bucketAndPrefix('s3://b', 's3://', 'bucket'), { container: 'b', prefix: '' });
    assert.deepEqual(bucketAndPrefix('s3://b/', 's3://', 'bucket'), { container: 'b', prefix: '' });
  });

  it('refuses prefixes that could leave the root, and missing names', () => {
    for (const url of ['s3://b/../x', 's3://b/a//c', 's3:///x', 's3://b/x?y=1', 's3://u:p@b/x']) {
      assert.throws(() => bucketAndPrefix(url, 's3://', 'bucket'), CxrecError, url);
    }
  });
});

describe('openObjectStore', () => {
  it('maps paths and file:/// URLs to local storage', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-open-'));
    try {
      assert.equal((await openObjectStore('rec', { cwd: dir })).location, join(dir, 'rec') + sep);
      assert.equal(
        (await openObjectStore(pathToFileURL(join(dir, 'x')).href)).location,
        join(dir, 'x') + sep,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('maps s3:// and azblob://', async () => {
    const s3 = await openObjectStore('s3://bucket/pre/fix/', { s3ForcePathStyle: true });
    assert.equal(s3.location, 's3://bucket/pre/fix/');
    await s3.close?.();
    const az = await openObjectStore('azblob://cont', {
      env: {
        AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net',
        AZURE_STORAGE_SAS_TOKEN: 'sv=1&sig=x',
      },
    });
    assert.equal(az.location, 'azblob://cont/');
  });

  it('refuses unknown schemes and bad URLs with a config error', async () => {
    for (const storage of ['gs://bucket/x', 'ftp://host/x', 's3://', 'azblob://c/../x']) {
      await assert.rejects(
        openObjectStore(storage),
        (err: unknown) => err instanceof CxrecError && err.code === 'config_invalid',
      );
    }
  });
});
