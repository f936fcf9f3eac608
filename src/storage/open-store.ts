/**
 * A `StorageTarget` (`CXREC_STORAGE`, parsed once by `config.ts`) → an
 * `ObjectStore`, through an explicit kind → backend switch (no backend
 * registers itself on import).
 */
import { resolve } from 'node:path';

import type { StorageTarget } from '../config.js';
import { CxrecError } from '../errors.js';
import { objectKeyProblem } from './keys.js';
import { openLocalObjectStore } from './local.js';
import type { ObjectStore } from './object-store.js';

/** Settings the S3 backend needs; plain values, parsed by the config module. */
export interface OpenObjectStoreOptions {
  /** `CXREC_S3_SSE`. @default undefined */
  s3Sse?: 'AES256' | 'aws:kms' | undefined;
  /** `CXREC_S3_KMS_KEY_ID`. @default undefined */
  s3KmsKeyId?: string | undefined;
  /** `CXREC_S3_FORCE_PATH_STYLE`. @default false */
  s3ForcePathStyle?: boolean | undefined;
  /** A relative local root is resolved against this. @default process.cwd() */
  cwd?: string | undefined;
  /** The environment to read AWS/Azure variables from. @default process.env */
  env?: NodeJS.ProcessEnv | undefined;
}

/** Opens the store `target` names: a local directory, an S3 bucket or an Azure container, with its prefix. */
export async function openObjectStore(
  target: StorageTarget,
  options: OpenObjectStoreOptions = {},
): Promise<ObjectStore> {
  if (target.kind !== 'local') checkPrefix(target.prefix);
  switch (target.kind) {
    case 'local':
      return openLocalObjectStore(resolve(options.cwd ?? process.cwd(), target.root));
    // The cloud SDKs load only when used: they cost a local export ~0.2 s of start-up.
    case 's3': {
      const { openS3ObjectStore } = await import('./s3.js');
      return openS3ObjectStore({
        bucket: target.bucket,
        prefix: target.prefix,
        sse: options.s3Sse,
        kmsKeyId: options.s3KmsKeyId,
        forcePathStyle: options.s3ForcePathStyle ?? false,
      });
    }
    case 'azblob': {
      const { openAzureBlobObjectStore } = await import('./azure-blob.js');
      return openAzureBlobObjectStore({
        container: target.container,
        prefix: target.prefix,
        env: options.env ?? process.env,
      });
    }
  }
}

/**
 * A bucket or container prefix (`''` or ending in `/`) must be a path every
 * key can sit under (`objectKeyProblem`), and carry no `?` or `#`: in
 * `CXREC_STORAGE` those are a URL's query or fragment typed by mistake, not
 * a folder.
 */
function checkPrefix(prefix: string): void {
  const problem = (msg: string): CxrecError =>
    new CxrecError('config_invalid', `CXREC_STORAGE ${msg}`, { context: { setting: 'CXREC_STORAGE' } });
  if (prefix === '') return;
  if (/[?#]/.test(prefix)) throw problem('may not carry a query or fragment');
  const bad = objectKeyProblem(prefix.slice(0, -1));
  if (bad !== undefined) throw problem(`has a prefix that ${bad}`);
}
