import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { BlobServiceClient } from '@azure/storage-blob';

import { CxrecError } from '../../src/errors.js';
import { openAzureBlobObjectStore } from '../../src/storage/azure-blob.js';
import { startAzurite, type RunningAzurite } from '../helpers/object-servers.js';
import { objectStoreSuite } from './object-store.suite.js';

let azurite: RunningAzurite;
let admin: BlobServiceClient;
const prefix = 'tenant-b/recs';

before(async () => {
  azurite = await startAzurite();
  admin = BlobServiceClient.fromConnectionString(azurite.connectionString);
});

after(async () => {
  await azurite.stop();
});

async function listAll(container: string, includeUncommitedBlobs = false): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of admin.getContainerClient(container).listBlobsFlat({ includeUncommitedBlobs })) {
    names.push(blob.name);
  }
  return names;
}

async function newContainer(): Promise<string> {
  const name = `t-${randomBytes(6).toString('hex')}`;
  await admin.getContainerClient(name).create();
  return name;
}

const env = (): NodeJS.ProcessEnv => ({ AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString });

objectStoreSuite(
  'azure (Azurite)',
  async () => {
    const container = await newContainer();
    const options = { container, prefix: `${prefix}/`, env: env(), blockSizeBytes: 256 * 1024 };
    return {
      store: await openAzureBlobObjectStore(options),
      reopen: () => openAzureBlobObjectStore(options),
      cleanup: async () => {
        await admin.getContainerClient(container).delete();
      },
      listAllKeys: () => listAll(container),
      assertNoLeftovers: async () => {
        // Uncommitted blocks stay (discarded by the next commit, or after 7
        // days) but only ever under the prefix.
        const outside = (await listAll(container, true)).filter((n) => !n.startsWith(`${prefix}/`));
        assert.deepEqual(outside, [], 'no staged blocks outside the prefix');
      },
    };
  },
  {
    rootPrefix: `${prefix}/`,
    resumesAcrossCrash: false,
    keepsDigests: true,
    checksMd5AtCommit: true,
    largeObjectBytes: 2 * 256 * 1024 + 777,
  },
);

describe('azure store specifics', () => {
  it('a committed blob carries Content-MD5, content type and digests in metadata', async () => {
    const container = await newContainer();
    try {
      const store = await openAzureBlobObjectStore({ container, prefix: '', env: env() });
      const info = await store.putSmall('metadata/a.json', Buffer.from('{"a":1}'), {
        contentType: 'application/json',
      });
      const props = await admin
        .getContainerClient(container)
        .getBlobClient('metadata/a.json')
        .getProperties();
      assert.equal(Buffer.from(props.contentMD5 ?? new Uint8Array()).toString('hex'), info.md5);
      assert.equal(props.contentType, 'application/json');
      assert.equal(props.metadata?.sha256, info.sha256);
      assert.equal(store.location, `azblob://${container}/`);
    } finally {
      await admin.getContainerClient(container).delete();
    }
  });

  it('needs credentials, and refuses plain http to a non-loopback host', async () => {
    await assert.rejects(
      openAzureBlobObjectStore({ container: 'c', prefix: '', env: {} }),
      /AZURE_STORAGE_CONNECTION_STRING/,
    );
    await assert.rejects(
      openAzureBlobObjectStore({
        container: 'c',
        prefix: '',
        env: {
          AZURE_STORAGE_ACCOUNT_URL: 'http://acct.blob.core.windows.net',
          AZURE_STORAGE_SAS_TOKEN: 'sv=x&sig=secret',
        },
      }),
      (err: unknown) =>
        err instanceof CxrecError && err.code === 'config_invalid' && !err.message.includes('secret'),
    );
  });

  it('a missing container is a storage error naming the key, not the account key', async () => {
    const store = await openAzureBlobObjectStore({ container: 'no-such-container', prefix: '', env: env() });
    await assert.rejects(
      store.putSmall('metadata/b.json', Buffer.from('{}'), { contentType: 'application/json' }),
      (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.match(err.message, /metadata\/b\.json/);
        assert.doesNotMatch(err.message, new RegExp(azurite.accountKey.slice(0, 20).replace(/[+/]/g, '.')));
        return true;
      },
    );
  });
});
