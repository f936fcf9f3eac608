import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { loadConfig } from '../../../src/config.js';
import { CxrecError } from '../../../src/errors.js';
import { openObjectStore } from '../../../src/storage/open-store.js';

/** What `cxrec` does with a `CXREC_STORAGE` value: parse it once in the config, then open the target. */
async function openFromSetting(storage: string, options: Parameters<typeof openObjectStore>[1] = {}) {
  const config = loadConfig({ env: { CXREC_STORAGE: storage } });
  return openObjectStore(config.storageTarget, options);
}

const isStorageConfigError = (err: unknown): boolean =>
  err instanceof CxrecError && err.code === 'config_invalid' && /CXREC_STORAGE/.test(err.message);

describe('openObjectStore', () => {
  it('maps paths and file:/// URLs to local storage', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-open-'));
    try {
      assert.equal((await openFromSetting('rec', { cwd: dir })).location, join(dir, 'rec') + sep);
      assert.equal(
        (await openFromSetting(pathToFileURL(join(dir, 'x')).href)).location,
        join(dir, 'x') + sep,
      );
      assert.equal(
        (await openObjectStore({ kind: 'local', root: 'y' }, { cwd: dir })).location,
        join(dir, 'y') + sep,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('maps s3:// and azblob://; a trailing slash or none means the same root, no prefix the top', async () => {
    for (const [storage, location] of [
      ['s3://bucket/pre/fix/', 's3://bucket/pre/fix/'],
      ['s3://bucket/pre/fix', 's3://bucket/pre/fix/'],
      ['s3://bucket/', 's3://bucket/'],
      ['s3://bucket', 's3://bucket/'],
      // The config's rule: empty segments collapse.
      ['s3://bucket/a//c', 's3://bucket/a/c/'],
    ] as const) {
      const s3 = await openFromSetting(storage, { s3ForcePathStyle: true });
      assert.equal(s3.location, location, storage);
      await s3.close?.();
    }
    const az = await openFromSetting('azblob://cont', {
      env: {
        AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net',
        AZURE_STORAGE_SAS_TOKEN: 'sv=1&sig=x',
      },
    });
    assert.equal(az.location, 'azblob://cont/');
  });

  it('refuses unknown schemes, bad names and prefixes that could leave the root, naming CXREC_STORAGE', async () => {
    for (const storage of [
      'gs://bucket/x',
      'ftp://host/x',
      's3://',
      's3:///x',
      's3://u:p@bucket/x',
      's3://bucket/../x',
      'azblob://c/../x',
      'azblob://cont/../x',
      'file://host/x',
      's3://bucket/x?y=1',
    ]) {
      await assert.rejects(async () => openFromSetting(storage), isStorageConfigError, storage);
    }
  });

  it('refuses a prefix no key can sit under, or one carrying a query or fragment', async () => {
    for (const prefix of ['x?y=1/', 'a#b/', 'a\\b/', 'nul\u0000/', '.partial/', `${'s'.repeat(256)}/`]) {
      await assert.rejects(
        openObjectStore({ kind: 's3', bucket: 'bucket', prefix }),
        isStorageConfigError,
        prefix,
      );
      await assert.rejects(
        openObjectStore({ kind: 'azblob', container: 'cont', prefix }, { env: {} }),
        isStorageConfigError,
        prefix,
      );
    }
  });
});
