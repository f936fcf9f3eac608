/**
 * One recording channel, from CXone to a verified object. The presigned URL
 * is asked for right before the transfer, lives only in this function's
 * memory, and is renewed only when the media host refuses it. A transfer
 * that breaks resumes with Range from the bytes already staged, so nothing
 * is fetched twice; an object is committed only once its size equals both
 * the announced `sizeBytes` and the host's length, and its md5 equals the
 * ETag when the ETag is one.
 */
import type { Dispatcher } from 'undici';

import { sleep } from '../cxone/clock.js';
import { backoffDelayMs } from '../cxone/retry-policy.js';
import { CxrecError, describeError, failureReason, isAbortError, isRetryable } from '../errors.js';
import type { Logger } from '../log.js';
import type { FinalState, JobRow, StoredObjectInfo } from '../state/ledger.js';
import { recordingObjectKey } from '../storage/keys.js';
import type { ObjectStore, StagedUpload } from '../storage/object-store.js';
import { hostAllowed, urlSchemeProblem } from '../url-policy.js';
import { StreamDigests } from './digests.js';
import { transferMedia } from './media-transfer.js';
import type { Channel, DownloadUrl, RecordingApi, RecordingDetail } from './recording-api.js';

/** How many received bytes are hashed and handed to the store at once. */
const writeBatchBytes = 1024 * 1024;

/** The contract's threshold: a channel never captured serves a bare header of at most this size. */
export const EMPTY_MEDIA_MAX_BYTES = 1024;

export type JobOutcome =
  | { kind: 'final'; state: FinalState; reason: string; stored?: StoredObjectInfo; error?: unknown }
  /** Not Available after all (the Processing trap): wait and re-check. */
  | { kind: 'waiting'; status: string; reason: string }
  /** A transient fault outlasted this attempt's retries: try the job again later. */
  | { kind: 'retry'; error: unknown }
  /** Another channel must be fetched instead (fallback to combined). */
  | { kind: 'fallback'; reason: string };

export interface DownloadContext {
  api: RecordingApi;
  store: ObjectStore;
  /** For presigned media URLs (keep-alive, timeouts). */
  dispatcher: Dispatcher;
  mediaHosts: readonly string[];
  channelFallback: 'combined' | 'none';
  retentionDays: number;
  /** Waits between transfer attempts (CXREC_BACKOFF_SECONDS). */
  backoff: { baseMs: number; capMs: number; random: () => number };
  /** Transfer attempts within one job before it is deferred. @default 6 */
  maxTransferAttempts?: number;
  /** Records the staged upload in the ledger before the first byte, and clears it. */
  recordUpload(upload: { token: string; bytes: number } | null): Promise<void>;
  /** Detail calls shared by the channels of one recording. */
  detailCache: Map<string, Promise<RecordingDetail>>;
  log: Logger;
  now(): number;
  /** Counts media bytes received, for progress. */
  onBytes?(n: number): void;
}

export async function downloadJob(
  job: JobRow,
  ctx: DownloadContext,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const { recordingId, channel } = job;
  const log = ctx.log.child({ recordingId, channel });
  const context = { recordingId, channel };

  if (channel !== 'combined') {
    const detail = await getDetail(ctx, recordingId, signal);
    if (!detail.availableChannels.includes(channel)) {
      return ctx.channelFallback === 'combined'
        ? { kind: 'fallback', reason: 'fell back to combined' }
        : { kind: 'final', state: 'media_unavailable', reason: `channel ${channel} was never captured` };
    }
  }

  let link = await newLink(ctx, recordingId, channel, signal);
  if (link.sizeBytes <= EMPTY_MEDIA_MAX_BYTES) {
    return {
      kind: 'final',
      state: 'media_unavailable',
      reason: `no audio: channel never captured or empty media (${link.sizeBytes} bytes)`,
    };
  }
  const key = recordingObjectKey(recordingId, channel, link.contentType);

  // Idempotent re-runs: an object already committed with the right size is ours.
  const existing = await ctx.store.head(key, { signal });
  if (existing && existing.sizeBytes === link.sizeBytes) {
    const digests =
      existing.md5 !== undefined && existing.sha256 !== undefined
        ? { md5: existing.md5, sha256: existing.sha256 }
        : await hashStored(ctx.store, key, signal);
    log.debug({ key }, 'already stored, not downloaded again');
    return {
      kind: 'final',
      state: 'stored',
      reason: 'already in storage',
      stored: {
        key,
        sizeBytes: existing.sizeBytes,
        ...digests,
        contentType: link.contentType,
        storedAt: ctx.now(),
      },
    };
  }

  const upload = await ctx.store.openUpload(key, {
    contentType: link.contentType,
    sizeBytes: link.sizeBytes,
    signal,
    ...resumeTokenFor(job.uploadToken, key),
  });
  const digests = new StreamDigests();
  try {
    await ctx.recordUpload({
      token: encodeUploadRef({ key, token: upload.resumeToken }),
      bytes: upload.stagedBytes,
    });
    if (upload.stagedBytes > 0 && upload.readStaged) {
      await digests.consume(upload.readStaged({ signal }), signal);
      log.info({ resumedAt: upload.stagedBytes }, 'resuming a staged upload');
    }

    // The network hands over 16–64 KiB at a time; hashing and writing in
    // batches of `writeBatchBytes` costs far fewer calls and file writes.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batchBytes === 0) return;
      const buf = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      digests.update(buf);
      await upload.write(buf, { signal });
    };
    const maxAttempts = ctx.maxTransferAttempts ?? 6;
    let etagMd5: string | undefined;
    let totalSize: number | undefined;
    for (let attempt = 1; ; attempt++) {
      if (upload.bytesWritten >= link.sizeBytes && upload.bytesWritten > 0) {
        // Everything is staged already (parked after the last byte): nothing
        // to fetch, and a Range from the end would answer 416. Check and commit.
        totalSize = link.sizeBytes;
        break;
      }
      try {
        const result = await transferMedia({
          url: new URL(link.url),
          offset: upload.bytesWritten,
          dispatcher: ctx.dispatcher,
          signal,
          context,
          onChunk: async (chunk) => {
            ctx.onBytes?.(chunk.length);
            batch.push(chunk);
            batchBytes += chunk.length;
            if (batchBytes >= writeBatchBytes) await flush();
          },
        });
        await flush();
        etagMd5 = result.etagMd5;
        totalSize = result.totalSize;
        break;
      } catch (err) {
        // Bytes received before the break are the object's, in order: keep
        // them, so the resume asks only for what never arrived. If keeping
        // them fails, the size check below starts the upload over.
        await flush().catch(() => {
          batch = [];
          batchBytes = 0;
        });
        if (isAbortError(err) || signal.aborted) {
          await upload.park().catch(() => undefined);
          throw err;
        }
        if (err instanceof CxrecError && err.context.status === 416) {
          // What is staged does not fit the object: start over from byte 0.
          await discard(upload, ctx);
          return { kind: 'retry', error: err };
        }
        if (err instanceof CxrecError && err.code === 'media_missing') {
          await discard(upload, ctx);
          return await mediaMissing(ctx, job, signal);
        }
        // Bytes may have been hashed but not taken by the store when a write failed:
        // the digests then no longer match the staged bytes, so start over.
        if (digests.sizeBytes !== upload.bytesWritten) {
          await discard(upload, ctx);
          return { kind: 'retry', error: err };
        }
        if (attempt >= maxAttempts || !(isRetryable(err) || isUrlRefused(err))) {
          await upload.park().catch(() => undefined);
          return isRetryable(err) ? { kind: 'retry', error: err } : failed(err);
        }
        log.info(
          { err: describeError(err), attempt, at: upload.bytesWritten },
          'media transfer interrupted, resuming',
        );
        if (isUrlRefused(err)) {
          link = await newLink(ctx, recordingId, channel, signal);
        } else {
          await sleep(backoffDelayMs(attempt, ctx.backoff), signal);
        }
      }
    }

    const sizeBytes = upload.bytesWritten;
    if (totalSize !== link.sizeBytes || sizeBytes !== link.sizeBytes) {
      // The Processing trap serves an object shorter than announced; a
      // recording that is really Available and still differs is corrupt.
      await discard(upload, ctx);
      const detail = await fetchDetail(ctx, recordingId, signal);
      if (detail.status === 'Failed') {
        return { kind: 'final', state: 'failed_processing', reason: 'transcoding failed' };
      }
      if (detail.status !== 'Available') {
        return { kind: 'waiting', status: detail.status, reason: `media incomplete while ${detail.status}` };
      }
      return {
        kind: 'retry',
        error: new CxrecError('integrity', 'size differs from the announced size', {
          context: { ...context, announced: link.sizeBytes, hostSize: totalSize, received: sizeBytes },
        }),
      };
    }
    const result = digests.digest();
    if (etagMd5 !== undefined && etagMd5 !== result.md5) {
      await discard(upload, ctx);
      return {
        kind: 'retry',
        error: new CxrecError('integrity', 'md5 differs from the media ETag', {
          context: { ...context, sizeBytes },
        }),
      };
    }

    const info = await upload.commit({
      sizeBytes,
      md5: result.md5,
      sha256: result.sha256,
      contentType: link.contentType,
      signal,
    });
    log.debug({ key: info.key, sizeBytes }, 'stored');
    return {
      kind: 'final',
      state: 'stored',
      reason: 'downloaded',
      stored: {
        key: info.key,
        sizeBytes,
        md5: result.md5,
        sha256: result.sha256,
        contentType: link.contentType,
        storedAt: ctx.now(),
      },
    };
  } finally {
    // A path that neither committed nor discarded the upload (a failed URL
    // renewal, a lost lease, a full disk) parks it: its lock and file are
    // released and the next attempt resumes it. A no-op after commit or abort.
    await upload.park().catch(() => undefined);
  }
}

/**
 * The ledger keeps a staged upload as the object key plus the store's
 * token, so a leftover can be discarded without asking CXone for the
 * content type again.
 */
export interface UploadRef {
  key: string;
  token: string;
}

export function encodeUploadRef(ref: UploadRef): string {
  return JSON.stringify([ref.key, ref.token]);
}

export function decodeUploadRef(value: string): UploadRef | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed) && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { key: parsed[0], token: parsed[1] };
    }
  } catch {
    // Not ours: treated as no upload.
  }
  return undefined;
}

function resumeTokenFor(stored: string | null, key: string): { resumeToken?: string } {
  const ref = stored === null ? undefined : decodeUploadRef(stored);
  return ref?.key === key ? { resumeToken: ref.token } : {};
}

async function newLink(
  ctx: DownloadContext,
  recordingId: string,
  channel: Channel,
  signal: AbortSignal,
): Promise<DownloadUrl> {
  const link = await ctx.api.downloadUrl(recordingId, channel, { signal });
  const url = new URL(link.url);
  const schemeProblem = urlSchemeProblem(link.url);
  if (schemeProblem !== undefined) {
    throw new CxrecError('media_host_refused', `media URL ${schemeProblem}`, {
      context: { recordingId, channel, host: url.hostname },
    });
  }
  if (!hostAllowed(url.hostname, ctx.mediaHosts)) {
    throw new CxrecError(
      'media_host_refused',
      `media URL points to ${url.hostname}, which CXREC_MEDIA_HOSTS does not allow (allowed: ${ctx.mediaHosts.join(', ')})`,
      { context: { recordingId, channel } },
    );
  }
  return link;
}

/** Media answered 404: purged by retention, gone, or not Available after all. */
async function mediaMissing(ctx: DownloadContext, job: JobRow, signal: AbortSignal): Promise<JobOutcome> {
  const retentionEnd = Date.parse(job.meta.createdDate) + ctx.retentionDays * 86_400_000;
  if (retentionEnd <= ctx.now()) {
    return { kind: 'final', state: 'purged', reason: 'media purged by retention' };
  }
  let detail: RecordingDetail;
  try {
    detail = await fetchDetail(ctx, job.recordingId, signal);
  } catch (err) {
    if (err instanceof CxrecError && err.code === 'not_found') {
      return { kind: 'final', state: 'purged', reason: 'recording no longer exists' };
    }
    throw err;
  }
  if (detail.status === 'Failed') {
    return { kind: 'final', state: 'failed_processing', reason: 'transcoding failed' };
  }
  if (detail.status !== 'Available') {
    return { kind: 'waiting', status: detail.status, reason: `media missing while ${detail.status}` };
  }
  const expires = detail.retentionExpiresAt == null ? retentionEnd : Date.parse(detail.retentionExpiresAt);
  if (expires <= ctx.now()) {
    return { kind: 'final', state: 'purged', reason: 'media purged by retention' };
  }
  return {
    kind: 'retry',
    error: new CxrecError('media_missing', 'media answered 404 for an Available recording within retention', {
      context: { recordingId: job.recordingId, channel: job.channel },
      retryable: true,
    }),
  };
}

function getDetail(ctx: DownloadContext, recordingId: string, signal: AbortSignal): Promise<RecordingDetail> {
  let pending = ctx.detailCache.get(recordingId);
  if (!pending) {
    pending = ctx.api.detail(recordingId, { signal });
    ctx.detailCache.set(recordingId, pending);
    pending.catch(() => ctx.detailCache.delete(recordingId));
  }
  return pending;
}

/** A fresh detail (status may have changed since any cached one). */
function fetchDetail(
  ctx: DownloadContext,
  recordingId: string,
  signal: AbortSignal,
): Promise<RecordingDetail> {
  ctx.detailCache.delete(recordingId);
  return getDetail(ctx, recordingId, signal);
}

async function discard(upload: StagedUpload, ctx: DownloadContext): Promise<void> {
  await upload.abort();
  await ctx.recordUpload(null);
}

async function hashStored(
  store: ObjectStore,
  key: string,
  signal: AbortSignal,
): Promise<{ md5: string; sha256: string }> {
  const digests = new StreamDigests();
  await digests.consume(await store.read(key, { signal }), signal);
  const { md5, sha256 } = digests.digest();
  return { md5, sha256 };
}

function isUrlRefused(err: unknown): boolean {
  return err instanceof CxrecError && err.code === 'media_url_expired';
}

function failed(err: unknown): JobOutcome {
  return { kind: 'final', state: 'failed', reason: failureReason(err), error: err };
}
