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
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';

import {
  BlobServiceClient,
  RestError,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';

import { CxrecError, isAbortError } from '../errors.js';
import { safeUrl } from '../redact.js';
import { urlSchemeProblem } from '../url-policy.js';
import { assertCommitMatches, assertOpen, throwIfAborted } from './commit-check.js';
import { assertObjectKey } from './keys.js';
import type {
  CommitOptions,
  ObjectInfo,
  ObjectStore,
  OpenUploadOptions,
  SignalOption,
  StagedUpload,
} from './object-store.js';

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
    if (endpoint !== undefined) checkUrl('the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING', endpoint);
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
    checkUrl('AZURE_STORAGE_ACCOUNT_URL', accountUrl);
    return new BlobServiceClient(`${accountUrl.replace(/\/+$/, '')}?${sas.replace(/^\?/, '')}`);
  }
  throw new CxrecError(
    'config_invalid',
    'azblob:// storage needs AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_SAS_TOKEN',
    { context: { setting: 'CXREC_STORAGE' } },
  );
}

function checkUrl(name: string, url: string): void {
  const problem = urlSchemeProblem(url);
  if (problem !== undefined) {
    throw new CxrecError('config_invalid', `${name} (${safeUrl(url)}) ${problem}`, {
      context: { setting: name },
    });
  }
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
    return Promise.resolve(new AzureStagedUpload(this, key, blob, randomBytes(6).toString('hex')));
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

  async putSmall(
    key: string,
    body: Buffer,
    contentType: string,
    options?: SignalOption,
  ): Promise<ObjectInfo> {
    const blob = this.blob(key);
    throwIfAborted(options?.signal, { key });
    const md5 = createHash('md5').update(body).digest('hex');
    const sha256 = createHash('sha256').update(body).digest('hex');
    const id = blockId(randomBytes(6).toString('hex'), 0);
    await this.stage(key, blob, id, body, options?.signal);
    await this.commitBlocks(key, blob, [id], {
      sizeBytes: body.length,
      md5,
      sha256,
      contentType,
      ...signalProp(options?.signal),
    });
    return { key, sizeBytes: body.length, md5, sha256 };
  }

  async stage(
    key: string,
    blob: BlockBlobClient,
    id: string,
    body: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    try {
      await blob.stageBlock(id, body, body.length, {
        transactionalContentMD5: createHash('md5').update(body).digest(),
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
      if (statusOf(err) === 404) {
        throw new CxrecError('storage', `no object at ${this.location}${key}`, {
          retryable: false,
          context: { key },
        });
      }
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
    await this.putSmall(key, Buffer.from('cxrec probe\n'), 'text/plain', options);
    await this.delete(key, options);
  }

  failure(operation: string, key: string, err: unknown): CxrecError {
    if (err instanceof CxrecError) return err;
    const context = { key, location: this.location };
    if (isAbortError(err))
      return new CxrecError('aborted', `Azure ${operation} cancelled`, { cause: err, context });
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
    const permanent =
      status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
    // RestError messages may carry the request URL, with a SAS: not used.
    return new CxrecError(
      code === 'Md5Mismatch' ? 'integrity' : 'storage',
      `Azure ${operation} failed: ${code}${status ? ` (HTTP ${status})` : ''}${hint}`,
      { cause: err, context, retryable: !permanent || code === 'Md5Mismatch' },
    );
  }
}

class AzureStagedUpload implements StagedUpload {
  readonly stagedBytes = 0;
  private readonly md5: Hash = createHash('md5');
  private readonly ids: string[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private state: 'open' | 'committed' | 'parked' | 'aborted' = 'open';
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: AzureBlobObjectStore,
    private readonly key: string,
    private readonly blob: BlockBlobClient,
    readonly resumeToken: string,
  ) {}

  get bytesWritten(): number {
    return this.written;
  }

  write(chunk: Buffer, options?: SignalOption): Promise<void> {
    const run = this.queue.then(() => this.writeNow(chunk, options?.signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(chunk: Buffer, signal: AbortSignal | undefined): Promise<void> {
    assertOpen(this.state !== 'open', this.context);
    throwIfAborted(signal, { key: this.key });
    const size = this.store.blockSize;
    if (this.pendingBytes + chunk.length < size) {
      this.accept([...this.pending, Buffer.from(chunk)], this.pendingBytes + chunk.length, [], chunk);
      return;
    }
    // Counters move only on success; a block staged again under the same
    // id replaces the earlier one.
    let rest = Buffer.concat([...this.pending, chunk]);
    const staged: string[] = [];
    while (rest.length >= size) {
      const id = blockId(this.resumeToken, this.ids.length + staged.length);
      await this.store.stage(this.key, this.blob, id, rest.subarray(0, size), signal);
      staged.push(id);
      rest = rest.subarray(size);
    }
    this.accept(rest.length > 0 ? [Buffer.from(rest)] : [], rest.length, staged, chunk);
  }

  private accept(pending: Buffer[], pendingBytes: number, staged: string[], chunk: Buffer): void {
    this.pending = pending;
    this.pendingBytes = pendingBytes;
    this.ids.push(...staged);
    this.md5.update(chunk);
    this.written += chunk.length;
  }

  async commit(options: CommitOptions): Promise<ObjectInfo> {
    await this.queue;
    assertOpen(this.state !== 'open', this.context);
    throwIfAborted(options.signal, { key: this.key });
    assertCommitMatches(
      { sizeBytes: this.written, md5: this.md5.copy().digest('hex') },
      options,
      this.context,
    );
    if (this.pendingBytes > 0 || this.ids.length === 0) {
      const id = blockId(this.resumeToken, this.ids.length);
      await this.store.stage(this.key, this.blob, id, Buffer.concat(this.pending), options.signal);
      this.ids.push(id);
      this.pending = [];
      this.pendingBytes = 0;
    }
    await this.store.commitBlocks(this.key, this.blob, this.ids, options);
    this.state = 'committed';
    return {
      key: this.key,
      sizeBytes: this.written,
      md5: options.md5.toLowerCase(),
      sha256: options.sha256.toLowerCase(),
    };
  }

  async park(): Promise<void> {
    await this.queue;
    if (this.state === 'open') this.state = 'parked';
    this.pending = [];
  }

  /** Nothing to send: uncommitted blocks go with the next commit of the blob, or after 7 days. */
  async abort(): Promise<void> {
    await this.queue;
    if (this.state === 'open' || this.state === 'parked') this.state = 'aborted';
    this.pending = [];
  }

  private get context(): { key: string; location: string } {
    return { key: this.key, location: this.store.location };
  }
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
