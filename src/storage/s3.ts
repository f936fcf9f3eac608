/**
 * Amazon S3 (and S3-compatible) storage under `s3://bucket/prefix/`.
 *
 * Why the low-level multipart calls and not `@aws-sdk/lib-storage` `Upload`:
 * `Upload` takes a whole stream and owns its parts, so it can neither keep
 * the parts already sent when the CXone transfer breaks (the pipeline
 * continues the same upload after a Range request; bytes already in S3 are
 * not fetched again), nor check the whole object's size and md5 before
 * `CompleteMultipartUpload`. Here every part carries `Content-MD5` (S3
 * refuses a part whose bytes differ), the store hashes what it sends, and
 * nothing completes unless the caller's size and md5 match it.
 *
 * Objects smaller than a part go in one `PutObject` with `Content-MD5` and
 * the md5/sha256 metadata. A multipart upload must name its metadata when
 * it is created, before the md5 is known, so after `Complete` the object is
 * copied onto itself with the metadata (`CopyObject`, `REPLACE`, guarded by
 * `x-amz-copy-source-if-match` so a concurrent writer's object never gets
 * our digests). Between the two calls the object is visible, whole and
 * verified, but without md5 metadata; on a versioned bucket the copy adds a
 * version.
 *
 * Resume: within the process the parts sent stay in the upload. Across a
 * crash they cannot be read back (S3 has no GET for the parts of an
 * incomplete upload), so the pipeline could not re-hash them: the upload
 * named by the resume token is aborted and the transfer restarts at 0.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';

import { CxrecError } from '../errors.js';
import { isLoopbackHost } from '../url-policy.js';
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

/** S3 refuses parts below 5 MiB (except the last). */
export const minPartSizeBytes = 5 * 1024 * 1024;

export interface S3ObjectStoreOptions {
  bucket: string;
  /** The root inside the bucket, `''` or ending in `/`. */
  prefix: string;
  /** `CXREC_S3_SSE`. @default undefined (the bucket's default encryption) */
  sse?: 'AES256' | 'aws:kms' | undefined;
  /** `CXREC_S3_KMS_KEY_ID`, with `sse: 'aws:kms'`. @default undefined (the account's aws/s3 key) */
  kmsKeyId?: string | undefined;
  /** `CXREC_S3_FORCE_PATH_STYLE`. @default false */
  forcePathStyle?: boolean | undefined;
  /**
   * An endpoint URL. @default undefined: the SDK reads `AWS_ENDPOINT_URL_S3`,
   * `AWS_ENDPOINT_URL` or the profile's `endpoint_url` itself.
   */
  endpoint?: string | undefined;
  /** @default undefined: the SDK reads `AWS_REGION` or the profile. */
  region?: string | undefined;
  /** @default undefined: the SDK's standard credential chain. */
  credentials?: S3ClientConfig['credentials'];
  /**
   * Part size of multipart uploads, and the size below which an object goes
   * in one PutObject; each upload in flight buffers up to one part.
   * @default 8 MiB
   */
  partSizeBytes?: number | undefined;
  /**
   * `sweepStaging` aborts an incomplete multipart upload no ledger row keeps
   * only once it was initiated this long ago: older than any live transfer.
   * @default 24 h
   */
  abandonedUploadAfterMs?: number | undefined;
}

export function openS3ObjectStore(options: S3ObjectStoreOptions): Promise<ObjectStore> {
  return new Promise((resolve) => resolve(new S3ObjectStore(options)));
}

/** The endpoint the SDK will use from the environment, checked against the http:// rule up front. */
function checkEndpoint(explicit: string | undefined): void {
  const candidates: [string, string | undefined][] = [
    ['the S3 endpoint', explicit],
    ['AWS_ENDPOINT_URL_S3', process.env.AWS_ENDPOINT_URL_S3],
    ['AWS_ENDPOINT_URL', process.env.AWS_ENDPOINT_URL],
  ];
  const found = candidates.find(([, v]) => v !== undefined && v !== '');
  if (found?.[1] === undefined) return;
  checkEndpointUrl(found[0], found[1]);
}

class S3ObjectStore implements ObjectStore {
  readonly location: string;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly sse: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };

  constructor(private readonly o: S3ObjectStoreOptions) {
    if (o.prefix !== '' && !o.prefix.endsWith('/')) throw new Error('S3 prefix must be empty or end in /');
    this.location = `s3://${o.bucket}/${o.prefix}`;
    this.partSize = o.partSizeBytes ?? 8 * 1024 * 1024;
    if (this.partSize < minPartSizeBytes) {
      throw new CxrecError('config_invalid', `S3 part size must be at least ${minPartSizeBytes} bytes`);
    }
    if (o.kmsKeyId !== undefined && o.sse !== 'aws:kms') {
      throw new CxrecError('config_invalid', 'CXREC_S3_KMS_KEY_ID needs CXREC_S3_SSE=aws:kms');
    }
    this.sse = {
      ...(o.sse ? { ServerSideEncryption: o.sse } : {}),
      ...(o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}),
    };
    checkEndpoint(o.endpoint);
    this.client = new S3Client({
      forcePathStyle: o.forcePathStyle ?? false,
      // The SDK's default adds CRC32 via aws-chunked trailers to every
      // upload; S3-compatible servers (s3rver, older MinIO) store that
      // framing as object bytes. We send Content-MD5 ourselves instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
      ...(o.region !== undefined ? { region: o.region } : {}),
      ...(o.credentials !== undefined ? { credentials: o.credentials } : {}),
    });
    // Whatever the endpoint's source (option, env, profile), plain http only
    // to loopback: checked on every request, after endpoint resolution.
    this.client.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as { protocol?: string; hostname?: string };
        if (request.protocol === 'http:' && !isLoopbackHost(request.hostname ?? '')) {
          throw new CxrecError(
            'config_invalid',
            `the S3 endpoint ${request.hostname ?? ''} uses plain http:// on a non-loopback host; use https://`,
          );
        }
        return next(args);
      },
      { step: 'finalizeRequest', name: 'cxrecLoopbackOnlyHttp' },
    );
  }

  /** The S3 key of a store key. */
  s3Key(key: string): string {
    assertObjectKey(key, this.location);
    return this.o.prefix + key;
  }

  async head(key: string, options?: SignalOption): Promise<ObjectInfo | undefined> {
    const Key = this.s3Key(key);
    throwIfAborted(options?.signal, { key });
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.o.bucket, Key }),
        httpOptions(options?.signal),
      );
      return {
        key,
        sizeBytes: out.ContentLength ?? 0,
        ...digestsFrom(out.Metadata),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.failure('HeadObject', key, err);
    }
  }

  async openUpload(key: string, options: OpenUploadOptions): Promise<StagedUpload> {
    const Key = this.s3Key(key);
    throwIfAborted(options.signal, { key });
    if (options.resumeToken !== undefined) await this.discardUpload(key, options.resumeToken, options);
    const upload = {
      key,
      location: this.location,
      chunkSizeBytes: this.partSize,
      sizeHintBytes: options.sizeBytes,
    };
    if (options.sizeBytes < this.partSize) {
      return new ChunkedUpload({
        ...upload,
        resumeToken: `s3-put:${randomBytes(8).toString('hex')}`,
        writer: { putWhole: (body, o) => this.putObject(key, Key, body, o, o.contentType, o.signal) },
      });
    }
    await this.abortEarlierUploadsOf(key, Key, options.signal);
    try {
      const out = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.o.bucket,
          Key,
          ContentType: options.contentType,
          ...this.sse,
        }),
        httpOptions(options.signal),
      );
      if (!out.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      return new ChunkedUpload({
        ...upload,
        resumeToken: `s3-mpu:${out.UploadId}`,
        writer: new S3MultipartWriter(this, key, Key, out.UploadId),
      });
    } catch (err) {
      throw this.failure('CreateMultipartUpload', key, err);
    }
  }

  /**
   * Aborts every incomplete multipart upload of exactly this key before a
   * new one starts. The pipeline opens an upload only under the key's ledger
   * lease, so an upload of the key still open now belongs to an attempt that
   * died — including one killed between CreateMultipartUpload and recording
   * its id, which no ledger row names. Without the list permission, or on a
   * server without the call, nothing is aborted (the lifecycle rule remains).
   */
  private async abortEarlierUploadsOf(
    key: string,
    Key: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let out;
    try {
      out = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.o.bucket, Prefix: Key }),
        httpOptions(signal),
      );
    } catch (err) {
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
      if (errorName(err) === 'AccessDenied' || status === 403 || status === 405 || status === 501) return;
      throw this.failure('ListMultipartUploads', key, err);
    }
    for (const upload of out.Uploads ?? []) {
      if (upload.Key === Key && upload.UploadId !== undefined) {
        await this.abortMultipart(key, Key, upload.UploadId, signal);
      }
    }
  }

  async discardUpload(key: string, resumeToken: string, options?: SignalOption): Promise<void> {
    const Key = this.s3Key(key);
    throwIfAborted(options?.signal, { key });
    // `s3-put:` uploads staged nothing in S3; other tokens are not ours.
    if (!resumeToken.startsWith('s3-mpu:')) return;
    await this.abortMultipart(key, Key, resumeToken.slice('s3-mpu:'.length), options?.signal);
  }

  async abortMultipart(key: string, Key: string, UploadId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.o.bucket, Key, UploadId }),
        httpOptions(signal),
      );
    } catch (err) {
      if (errorName(err) === 'NoSuchUpload') return;
      throw this.failure('AbortMultipartUpload', key, err);
    }
  }

  /**
   * Aborts incomplete multipart uploads under `<prefix>recordings/` that no
   * ledger row keeps and that were initiated more than
   * `abandonedUploadAfterMs` ago. Without `s3:ListBucketMultipartUploads`,
   * or on a server that does not implement the call, it sweeps nothing
   * rather than fail an export that stored everything:
   * the leftovers are invisible, and the bucket's lifecycle rule
   * (AbortIncompleteMultipartUpload) remains the backstop.
   */
  async sweepStaging(options: SignalOption & { keepTokens: ReadonlySet<string> }): Promise<number> {
    const Prefix = `${this.o.prefix}recordings/`;
    const olderThan = Date.now() - (this.o.abandonedUploadAfterMs ?? 24 * 3_600_000);
    let removed = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      throwIfAborted(options.signal, { key: 'recordings/' });
      let out;
      try {
        out = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.o.bucket, Prefix, KeyMarker, UploadIdMarker }),
          httpOptions(options.signal),
        );
      } catch (err) {
        // Forbidden, or not implemented (s3rver, some S3-compatible servers).
        const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
        if (errorName(err) === 'AccessDenied' || status === 403 || status === 405 || status === 501) {
          return removed;
        }
        throw this.failure('ListMultipartUploads', 'recordings/', err);
      }
      for (const upload of out.Uploads ?? []) {
        const { Key, UploadId, Initiated } = upload;
        // Checked here too: a server that ignores Prefix must not make us
        // abort someone else's upload.
        if (Key === undefined || UploadId === undefined || Initiated === undefined) continue;
        if (!Key.startsWith(Prefix) || options.keepTokens.has(`s3-mpu:${UploadId}`)) continue;
        if (Initiated.getTime() > olderThan) continue;
        await this.abortMultipart(Key.slice(this.o.prefix.length), Key, UploadId, options.signal);
        removed++;
      }
      if (out.IsTruncated !== true || out.NextKeyMarker === undefined) return removed;
      KeyMarker = out.NextKeyMarker;
      UploadIdMarker = out.NextUploadIdMarker;
    }
  }

  async putSmall(key: string, body: Buffer, options: PutSmallOptions): Promise<ObjectInfo> {
    const Key = this.s3Key(key);
    throwIfAborted(options.signal, { key });
    const digests = digestsOf(body);
    await this.putObject(key, Key, body, digests, options.contentType, options.signal);
    return { key, sizeBytes: body.length, ...digests };
  }

  /** One PutObject; S3 refuses it (BadDigest) unless the bytes match Content-MD5. */
  async putObject(
    key: string,
    Key: string,
    body: Buffer,
    digests: { md5: string; sha256: string },
    contentType: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.o.bucket,
          Key,
          Body: body,
          ContentLength: body.length,
          ContentMD5: Buffer.from(digests.md5, 'hex').toString('base64'),
          ContentType: contentType,
          Metadata: { md5: digests.md5, sha256: digests.sha256 },
          ...this.sse,
        }),
        httpOptions(signal),
      );
      this.checkEtag(key, out.ETag, digests.md5);
    } catch (err) {
      throw this.failure('PutObject', key, err);
    }
  }

  async uploadPart(
    key: string,
    Key: string,
    UploadId: string,
    PartNumber: number,
    part: Buffer,
    md5: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<CompletedPart> {
    try {
      const out = await this.client.send(
        new UploadPartCommand({
          Bucket: this.o.bucket,
          Key,
          UploadId,
          PartNumber,
          Body: part,
          ContentLength: part.length,
          ContentMD5: md5.toString('base64'),
        }),
        httpOptions(signal),
      );
      if (!out.ETag) throw new Error('UploadPart returned no ETag');
      this.checkEtag(key, out.ETag, md5.toString('hex'));
      return { PartNumber, ETag: out.ETag };
    } catch (err) {
      throw this.failure(`UploadPart ${PartNumber}`, key, err);
    }
  }

  /** Completes the upload; returns the ETag of the object it made visible. */
  async complete(
    key: string,
    Key: string,
    UploadId: string,
    parts: CompletedPart[],
    signal: AbortSignal | undefined,
  ): Promise<string> {
    try {
      const out = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.o.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
        httpOptions(signal),
      );
      return out.ETag ?? '';
    } catch (err) {
      throw this.failure('CompleteMultipartUpload', key, err);
    }
  }

  /**
   * Writes the digests as metadata by copying the object onto itself, only
   * if it is still the object we completed (`etag`).
   */
  async writeDigests(key: string, Key: string, etag: string, options: CommitOptions): Promise<void> {
    try {
      const out = await this.client.send(
        new CopyObjectCommand({
          Bucket: this.o.bucket,
          Key,
          CopySource: `${this.o.bucket}/${encodeURIComponent(Key).replace(/%2F/g, '/')}`,
          ...(etag ? { CopySourceIfMatch: etag } : {}),
          MetadataDirective: 'REPLACE',
          ContentType: options.contentType,
          Metadata: { md5: options.md5.toLowerCase(), sha256: options.sha256.toLowerCase() },
          ...this.sse,
        }),
        httpOptions(options.signal),
      );
      this.checkEtag(key, out.CopyObjectResult?.ETag, options.md5.toLowerCase());
    } catch (err) {
      if (errorName(err) === 'PreconditionFailed') {
        throw new CxrecError(
          'storage',
          'another writer replaced the object while this one was being committed',
          {
            cause: err,
            context: { key, location: this.location },
          },
        );
      }
      throw this.failure('CopyObject (writing md5/sha256 metadata)', key, err);
    }
  }

  /**
   * Without SSE-KMS, the ETag of a PutObject, UploadPart or single-request
   * copy is the md5 S3 computed on what it stored: a second opinion.
   */
  private checkEtag(key: string, etag: string | undefined, md5: string): void {
    if (this.o.sse === 'aws:kms' || etag === undefined) return;
    const bare = etag.replace(/"/g, '').toLowerCase();
    if (/^[0-9a-f]{32}$/.test(bare) && bare !== md5) {
      throw new CxrecError('integrity', `S3 stored bytes whose md5 ${bare} differs from the ${md5} sent`, {
        context: { key, location: this.location },
      });
    }
  }

  async read(key: string, options?: SignalOption): Promise<Readable> {
    const Key = this.s3Key(key);
    throwIfAborted(options?.signal, { key });
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.o.bucket, Key }),
        httpOptions(options?.signal),
      );
      if (!(out.Body instanceof Readable)) throw new Error('GetObject returned no stream');
      return out.Body;
    } catch (err) {
      if (isNotFound(err)) throw noObjectAt(this.location, key);
      throw this.failure('GetObject', key, err);
    }
  }

  async delete(key: string, options?: SignalOption): Promise<void> {
    const Key = this.s3Key(key);
    throwIfAborted(options?.signal, { key });
    try {
      await this.client.send(
        new DeleteObjectCommand({ Bucket: this.o.bucket, Key }),
        httpOptions(options?.signal),
      );
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.failure('DeleteObject', key, err);
    }
  }

  async probe(options?: SignalOption): Promise<void> {
    // At the root, never under recordings/; removed at once.
    const key = `.cxrec-probe-${randomBytes(8).toString('hex')}`;
    await this.putSmall(key, Buffer.from('cxrec probe\n'), { ...options, contentType: 'text/plain' });
    await this.delete(key, options);
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  get partSizeBytes(): number {
    return this.partSize;
  }

  failure(operation: string, key: string, err: unknown): CxrecError {
    return sdkFailure('S3', operation, { key, location: this.location }, err, s3ErrorFacts);
  }
}

/** The parts of one multipart upload; `ChunkedUpload` cuts them and keeps the counts. */
class S3MultipartWriter implements ChunkWriter {
  private readonly parts: CompletedPart[] = [];
  /**
   * Kept, so a commit retried after a failed copy only redoes the copy, and
   * abort knows there is no upload left to abort.
   */
  private completedEtag: string | undefined;

  constructor(
    private readonly store: S3ObjectStore,
    private readonly key: string,
    private readonly s3Key: string,
    private readonly uploadId: string,
  ) {}

  async writeChunk(
    index: number,
    chunk: Buffer,
    md5: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    this.parts[index] = await this.store.uploadPart(
      this.key,
      this.s3Key,
      this.uploadId,
      index + 1,
      chunk,
      md5,
      signal,
    );
  }

  async complete(chunkCount: number, options: CommitOptions): Promise<void> {
    this.completedEtag ??= await this.store.complete(
      this.key,
      this.s3Key,
      this.uploadId,
      this.parts.slice(0, chunkCount),
      options.signal,
    );
    await this.store.writeDigests(this.key, this.s3Key, this.completedEtag, options);
  }

  async abort(): Promise<void> {
    if (this.completedEtag === undefined)
      await this.store.abortMultipart(this.key, this.s3Key, this.uploadId);
  }
}

function digestsFrom(metadata: Record<string, string> | undefined): { md5?: string; sha256?: string } {
  const md5 = metadata?.md5?.toLowerCase();
  const sha256 = metadata?.sha256?.toLowerCase();
  return {
    ...(md5 && /^[0-9a-f]{32}$/.test(md5) ? { md5 } : {}),
    ...(sha256 && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {}),
  };
}

function s3ErrorFacts(err: unknown): SdkErrorFacts {
  const name = errorName(err);
  const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
  const hint =
    name === 'AccessDenied' || status === 403
      ? '; check the credentials may s3:PutObject, s3:GetObject, s3:DeleteObject, s3:AbortMultipartUpload and s3:ListBucketMultipartUploads on this bucket and prefix (and kms:GenerateDataKey with aws:kms)'
      : name === 'NoSuchBucket'
        ? '; the bucket does not exist (check CXREC_STORAGE and AWS_REGION)'
        : name === 'BadDigest' || name === 'InvalidDigest'
          ? '; S3 refused bytes that did not match their Content-MD5'
          : '';
  return { code: name, status, hint, digestMismatch: name === 'BadDigest' };
}

function httpOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

function errorName(err: unknown): string {
  if (err instanceof S3ServiceException) return err.name;
  return err instanceof Error ? err.name : 'Error';
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  return (
    name === 'NotFound' ||
    name === 'NoSuchKey' ||
    (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404 && name !== 'NoSuchBucket')
  );
}
