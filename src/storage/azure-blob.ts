/**
 * Azure Blob storage under `azblob://container/prefix/`.
 *
 * Why `stageBlock`/`commitBlockList` and not `uploadStream`: the pipeline
 * keeps one upload across a broken CXone transfer (blocks already staged
 * are not sent again), and nothing may become visible before the whole
 * object's size and md5 are checked. Each block is staged under the final
 * blob name with a transactional MD5 (the service refuses a block whose
 * bytes differ); the block list is committed, with `blobContentMD5` and
 * md5/sha256 metadata, only after the caller's size and md5 match what was
 * staged. Committing a block list atomically replaces the blob and
 * discards every uncommitted block not in it: leftovers of earlier attempts
 * (and of a concurrent writer, whose own commit then fails) go with the
 * next commit, or after 7 days by the service. So there is no
 * `sweepStaging`: uncommitted blocks are not listed as blobs, cost little,
 * and cannot be removed without committing or deleting the blob, which
 * could destroy a live writer's work or a committed object.
 *
 * Block ids are `<token>-<index>`: the token (random per upload) is the
 * resume token. Uncommitted blocks cannot be read back, so across a crash
 * the transfer restarts at 0 under a new token.
 *
 * Credentials, in this order: `AZURE_STORAGE_CONNECTION_STRING`, or
 * `AZURE_STORAGE_ACCOUNT_URL` (`https://account.blob.core.windows.net`)
 * with `AZURE_STORAGE_SAS_TOKEN` (needs read, write, delete, create on the
 * container).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

import {
  BlobServiceClient,
  RestError,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';

import { CxrecError } from '../errors.js';
import { ChunkedUpload, type ChunkWriter } from './chunked-upload.js';
import { digestsOf, throwIfAborted } from './commit-check.js';
import { assertObjectKey } from './keys.js';
import type {
  CommitOptions,
  ObjectInfo,
  ObjectStore,
  OpenUploadOptions,
  SignalOption,
  StagedUpload,
  PutSmallOptions,
} from './object-store.js';
import { checkEndpointUrl, noObjectAt, sdkFailure, type SdkErrorFacts } from './store-errors.js';

export interface AzureBlobObjectStoreOptions {
  container: string;
  /** The root inside the container, `''` or ending in `/`. */
  prefix: string;
  /** Where `AZURE_STORAGE_*` are read. @default process.env */
  env?: NodeJS.ProcessEnv | undefined;
  /**
   * Size of a staged block; each upload in flight buffers up to one.
   * @default 8 MiB
   */
  blockSizeBytes?: number | undefined;
}

export function openAzureBlobObjectStore(options: AzureBlobObjectStoreOptions): Promise<ObjectStore> {
  return new Promise((resolve) => resolve(new AzureBlobObjectStore(options)));
}

function serviceClient(env: NodeJS.ProcessEnv): BlobServiceClient {
  const connectionString = env.AZURE_STORAGE_CONNECTION_STRING;
  if (connectionString) {
    const endpoint = /(?:^|;)BlobEndpoint=([^;]+)/i.exec(connectionString)?.[1];
    const protocol = /(?:^|;)DefaultEndpointsProtocol=([^;]+)/i.exec(connectionString)?.[1];
    if (endpoint !== undefined)
      checkEndpointUrl('the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING', endpoint);
    else if (protocol?.toLowerCase() === 'http') {
      throw new CxrecError(
        'config_invalid',
        'AZURE_STORAGE_CONNECTION_STRING asks for http on a non-loopback host; use https',
      );
    }
    try {
      return BlobServiceClient.fromConnectionString(connectionString);
    } catch (err) {
      // The SDK's message could quote the string; never pass it on.
      throw new CxrecError(
        'config_invalid',
        'AZURE_STORAGE_CONNECTION_STRING is not a valid connection string',
        {
          context: {
            setting: 'AZURE_STORAGE_CONNECTION_STRING',
            reason: err instanceof Error ? err.name : 'error',
          },
        },
      );
    }
  }
  const accountUrl = env.AZURE_STORAGE_ACCOUNT_URL;
  const sas = env.AZURE_STORAGE_SAS_TOKEN;
  if (accountUrl && sas) {
    checkEndpointUrl('AZURE_STORAGE_ACCOUNT_URL', accountUrl);
    return new BlobServiceClient(`${accountUrl.replace(/\/+$/, '')}?${sas.replace(/^\?/, '')}`);
  }
  throw new CxrecError(
    'config_invalid',
    'azblob:// storage needs AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_SAS_TOKEN',
    { context: { setting: 'CXREC_STORAGE' } },
  );
}

class AzureBlobObjectStore implements ObjectStore {
  readonly location: string;
  readonly blockSize: number;
  private readonly client: BlobServiceClient;
  private readonly container: ContainerClient;

  constructor(private readonly o: AzureBlobObjectStoreOptions) {
    if (o.prefix !== '' && !o.prefix.endsWith('/')) throw new Error('Azure prefix must be empty or end in /');
    this.location = `azblob://${o.container}/${o.prefix}`;
    this.blockSize = o.blockSizeBytes ?? 8 * 1024 * 1024;
    this.client = serviceClient(o.env ?? process.env);
    this.container = this.client.getContainerClient(o.container);
  }

  blob(key: string): BlockBlobClient {
    assertObjectKey(key, this.location);
    return this.container.getBlockBlobClient(this.o.prefix + key);
  }

  async head(key: string, options?: SignalOption): Promise<ObjectInfo | undefined> {
    const blob = this.blob(key);
    throwIfAborted(options?.signal, { key });
    try {
      const p = await blob.getProperties(signalOption(options?.signal));
      const md5 = p.metadata?.md5?.toLowerCase();
      const sha256 = p.metadata?.sha256?.toLowerCase();
      return {
        key,
        sizeBytes: p.contentLength ?? 0,
        ...(md5 && /^[0-9a-f]{32}$/.test(md5) ? { md5 } : {}),
        ...(sha256 && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {}),
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.failure('get properties', key, err);
    }
  }

  async openUpload(key: string, options: OpenUploadOptions): Promise<StagedUpload> {
    const blob = this.blob(key);
    throwIfAborted(options.signal, { key });
    // Any token passed in names blocks we cannot read back; they are
    // discarded by this upload's commit. A new token keeps ids apart.
    const token = randomBytes(6).toString('hex');
    return Promise.resolve(
      new ChunkedUpload({
        key,
        location: this.location,
        resumeToken: token,
        chunkSizeBytes: this.blockSize,
        sizeHintBytes: options.sizeBytes,
        writer: new AzureBlockWriter(this, key, blob, token),
      }),
    );
  }

  discardUpload(key: string, _resumeToken: string, options?: SignalOption): Promise<void> {
    // Uncommitted blocks cannot be deleted one by one; the next commit of
    // this blob discards them, and the service drops them after 7 days.
    return new Promise((resolve) => {
      this.blob(key);
      throwIfAborted(options?.signal, { key });
      resolve();
    });
  }

  async putSmall(key: string, body: Buffer, options: PutSmallOptions): Promise<ObjectInfo> {
    const blob = this.blob(key);
    throwIfAborted(options.signal, { key });
    const info = { key, sizeBytes: body.length, ...digestsOf(body) };
    const writer = new AzureBlockWriter(this, key, blob, randomBytes(6).toString('hex'));
    await writer.writeChunk(0, body, Buffer.from(info.md5, 'hex'), options.signal);
    await writer.complete(1, { ...info, contentType: options.contentType, ...signalProp(options.signal) });
    return info;
  }

  async stage(
    key: string,
    blob: BlockBlobClient,
    id: string,
    body: Buffer,
    md5: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    try {
      await blob.stageBlock(id, body, body.length, {
        transactionalContentMD5: md5,
        ...signalOption(signal),
      });
    } catch (err) {
      throw this.failure('stage block', key, err);
    }
  }

  async commitBlocks(
    key: string,
    blob: BlockBlobClient,
    ids: string[],
    options: CommitOptions,
  ): Promise<void> {
    try {
      await blob.commitBlockList(ids, {
        blobHTTPHeaders: {
          blobContentType: options.contentType,
          blobContentMD5: Buffer.from(options.md5, 'hex'),
        },
        metadata: { md5: options.md5.toLowerCase(), sha256: options.sha256.toLowerCase() },
        ...signalOption(options.signal),
      });
    } catch (err) {
      throw this.failure('commit block list', key, err);
    }
  }

  async read(key: string, options?: SignalOption): Promise<Readable> {
    const blob = this.blob(key);
    throwIfAborted(options?.signal, { key });
    try {
      const out = await blob.download(0, undefined, signalOption(options?.signal));
      const body = out.readableStreamBody;
      if (!(body instanceof Readable)) throw new Error('download returned no Node stream');
      return body;
    } catch (err) {
      if (statusOf(err) === 404) throw noObjectAt(this.location, key);
      throw this.failure('download', key, err);
    }
  }

  async delete(key: string, options?: SignalOption): Promise<void> {
    const blob = this.blob(key);
    throwIfAborted(options?.signal, { key });
    try {
      await blob.deleteIfExists(signalOption(options?.signal));
    } catch (err) {
      throw this.failure('delete', key, err);
    }
  }

  async probe(options?: SignalOption): Promise<void> {
    const key = `.cxrec-probe-${randomBytes(8).toString('hex')}`;
    await this.putSmall(key, Buffer.from('cxrec probe\n'), { ...options, contentType: 'text/plain' });
    await this.delete(key, options);
  }

  failure(operation: string, key: string, err: unknown): CxrecError {
    return sdkFailure('Azure', operation, { key, location: this.location }, err, azureErrorFacts);
  }
}

/** The blocks of one blob, named `<token>-<index>`; `ChunkedUpload` cuts them and keeps the counts. */
class AzureBlockWriter implements ChunkWriter {
  constructor(
    private readonly store: AzureBlobObjectStore,
    private readonly key: string,
    private readonly blob: BlockBlobClient,
    private readonly token: string,
  ) {}

  writeChunk(index: number, chunk: Buffer, md5: Buffer, signal: AbortSignal | undefined): Promise<void> {
    return this.store.stage(this.key, this.blob, blockId(this.token, index), chunk, md5, signal);
  }

  complete(chunkCount: number, options: CommitOptions): Promise<void> {
    const ids = Array.from({ length: chunkCount }, (_, i) => blockId(this.token, i));
    return this.store.commitBlocks(this.key, this.blob, ids, options);
  }

  // No abort: uncommitted blocks cannot be deleted one by one; they go with
  // the next commit of the blob, or after 7 days.
}

function azureErrorFacts(err: unknown): SdkErrorFacts {
  const status = statusOf(err);
  const code = err instanceof RestError ? (err.code ?? 'error') : err instanceof Error ? err.name : 'error';
  const hint =
    status === 403
      ? '; check the connection string or SAS token (it needs read, write, delete and create on the container, and must not have expired)'
      : code === 'ContainerNotFound'
        ? '; the container does not exist (check CXREC_STORAGE)'
        : code === 'Md5Mismatch'
          ? '; the service refused bytes that did not match their MD5'
          : '';
  // A block refused for its MD5 is sent again.
  return { code, status, hint, digestMismatch: code === 'Md5Mismatch', retryAnyway: code === 'Md5Mismatch' };
}

/** Block ids must be base64 of equal length within a blob. */
function blockId(token: string, index: number): string {
  return Buffer.from(`${token}-${String(index).padStart(6, '0')}`).toString('base64');
}

function statusOf(err: unknown): number | undefined {
  return err instanceof RestError ? err.statusCode : undefined;
}

function signalOption(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

function signalProp(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
