/**
 * `CXREC_STORAGE` → an `ObjectStore`, through an explicit scheme → factory
 * map (no backend registers itself on import).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  /** Relative paths are resolved against this. @default process.cwd() */
  cwd?: string | undefined;
  /** The environment to read AWS/Azure variables from. @default process.env */
  env?: NodeJS.ProcessEnv | undefined;
}

type Factory = (rest: string, options: OpenObjectStoreOptions) => Promise<ObjectStore>;

const factories: Readonly<Record<string, Factory>> = {
  'file:': (url) => openLocalObjectStore(fileURLToPath(url)),
  // The cloud SDKs load only when used: they cost a local export ~0.2 s of start-up.
  's3:': async (url, o) => {
    const { container, prefix } = bucketAndPrefix(url, 's3://', 'bucket');
    const { openS3ObjectStore } = await import('./s3.js');
    return openS3ObjectStore({
      bucket: container,
      prefix,
      sse: o.s3Sse,
      kmsKeyId: o.s3KmsKeyId,
      forcePathStyle: o.s3ForcePathStyle ?? false,
    });
  },
  'azblob:': async (url, o) => {
    const { container, prefix } = bucketAndPrefix(url, 'azblob://', 'container');
    const { openAzureBlobObjectStore } = await import('./azure-blob.js');
    return openAzureBlobObjectStore({ container, prefix, env: o.env ?? process.env });
  },
};

/**
 * Opens the store `storage` names: a directory path (relative or absolute),
 * `file:///dir`, `s3://bucket/prefix` or `azblob://container/prefix`.
 */
export function openObjectStore(storage: string, options: OpenObjectStoreOptions = {}): Promise<ObjectStore> {
  const scheme = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(storage)?.[1]?.toLowerCase();
  if (scheme === undefined) return openLocalObjectStore(resolve(options.cwd ?? process.cwd(), storage));
  const factory = factories[scheme];
  if (factory === undefined) {
    return Promise.reject(
      new CxrecError(
        'config_invalid',
        `CXREC_STORAGE has scheme ${scheme}//; use a directory path, file:///dir, s3://bucket/prefix or azblob://container/prefix`,
        { context: { setting: 'CXREC_STORAGE' } },
      ),
    );
  }
  try {
    return factory(storage, options);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * `s3://bucket/a/b/` → bucket and `a/b/`; `s3://bucket` → `''` (the top).
 * A trailing slash or none means the same root.
 */
export function bucketAndPrefix(
  url: string,
  scheme: string,
  what: string,
): { container: string; prefix: string } {
  const rest = url.slice(scheme.length);
  const slash = rest.indexOf('/');
  const container = slash === -1 ? rest : rest.slice(0, slash);
  const path = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  const problem = (msg: string): CxrecError =>
    new CxrecError('config_invalid', `CXREC_STORAGE ${msg}`, { context: { setting: 'CXREC_STORAGE' } });
  if (container === '' || /[?#@:\s]/.test(container))
    throw problem(`needs a ${what} name: ${scheme}${what}/prefix`);
  if (/[?#]/.test(path)) throw problem('may not carry a query or fragment');
  if (path !== '') {
    const bad = objectKeyProblem(path);
    if (bad !== undefined) throw problem(`has a prefix that ${bad}`);
  }
  return { container, prefix: path === '' ? '' : `${path}/` };
}
