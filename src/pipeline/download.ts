/**
 * One recording channel, from CXone to a verified object, in four steps:
 *
 *   preflight ─▶ transfer with resume ─▶ verify ─▶ commit
 *   (settled      (Range from what is      (sizes, digests,
 *    already?)     staged after a break)    ETag md5)
 *
 * The presigned URL is asked for right before the transfer, lives only in
 * this job's memory, and is renewed only when the media host refuses it.
 * A transfer that breaks resumes from the bytes already staged, so nothing
 * is fetched twice; an object is committed only once its size equals both
 * the announced `sizeBytes` and the host's length, and its md5 equals the
 * ETag when the ETag is one.
 */
import type { Dispatcher } from 'undici';

import { sleep } from '../cxone/clock.js';
import { backoffDelayMs } from '../cxone/retry-policy.js';
import {
  CxrecError,
  describeError,
  failureDetail,
  failureReason,
  isAbortError,
  isRetryable,
} from '../errors.js';
import type { Logger } from '../log.js';
import type { JobRow } from '../state/ledger.js';
import { layoutFolder, layouts, recordingObjectKey, type Layout } from '../storage/keys.js';
import type { ObjectStore, StagedUpload } from '../storage/object-store.js';
import { hostAllowed, urlSchemeProblem } from '../url-policy.js';
import type { DigestResult } from './digests.js';
import { sharedHashPool, type HashPool, type PooledDigests } from './hash-pool.js';
import { transferMedia } from './media-transfer.js';
import { decodeUploadRef, encodeUploadRef } from './upload-ref.js';
import type { Channel } from '../state/ledger.js';
import { noteRetry } from '../retry-tally.js';
import type { JobOutcome } from './job-outcome.js';
import { probeMedia } from './media-probe.js';
import type { LinkAnswer, MediaLink, RecordingSource } from './recording-source.js';

/** The contract's threshold: a channel never captured serves a bare header of at most this size. */
export const EMPTY_MEDIA_MAX_BYTES = 1024;

export interface DownloadContext {
  /** The dialect: what a row is owed, and its media links. */
  source: RecordingSource;
  store: ObjectStore;
  /** For presigned media URLs (keep-alive, timeouts). */
  dispatcher: Dispatcher;
  mediaHosts: readonly string[];
  /** CXREC_LAYOUT: where a new object goes (one stored under another layout stays where it is). */
  layout: Layout;
  /** Waits between transfer attempts (CXREC_BACKOFF_SECONDS). */
  backoff: { baseMs: number; capMs: number; random: () => number };
  /** Transfer attempts within one job before it is deferred. @default 6 */
  maxTransferAttempts?: number;
  /** Records the staged upload in the ledger before the first byte, and clears it. */
  recordUpload(upload: { token: string; bytes: number } | null): Promise<void>;
  log: Logger;
  now(): number;
  /** Counts media bytes received, for progress. */
  onBytes?(n: number): void;
  /**
   * Re-checks the job's lease right before commit; throws when it is lost
   * (the upload is then parked, not committed).
   */
  confirmLease?(): Promise<void>;
  /** Where md5 and sha256 are computed, off the main thread. @default sharedHashPool() */
  hashPool?: HashPool;
}

/**
 * A media link whose size and type are known: announced by the API, or
 * read from the media host before the first byte is staged. The steps
 * below receive links only through a `FreshLink`, never from a client.
 */
interface KnownLink extends MediaLink {
  contentType: string;
  sizeBytes: number;
}
type FreshLink = () => Promise<KnownLink>;

/** What the steps of one job share. */
interface JobRun {
  job: JobRow;
  ctx: DownloadContext;
  log: Logger;
  signal: AbortSignal;
  /** For error messages. */
  context: { recordingId: string; channel: Channel };
  /** A new, checked media link (asked for again when the media host refuses one). */
  freshLink: FreshLink;
}

/** The transfer ended with every byte the host sent staged; `verify` decides whether they are the object. */
interface Received {
  link: KnownLink;
  /** The host's size of the object (Content-Range or Content-Length). */
  totalSize: number;
  etagMd5: string | undefined;
}

type Step<T> = { outcome: JobOutcome } | T;

export async function downloadJob(
  job: JobRow,
  ctx: DownloadContext,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const { recordingId, channel } = job;
  const run: JobRun = {
    job,
    ctx,
    signal,
    log: ctx.log.child({ recordingId, channel }),
    context: { recordingId, channel },
    freshLink: () => Promise.reject(new Error('no media link asked for yet')),
  };

  const ready = await preflight(run);
  if ('outcome' in ready) return ready.outcome;
  const { link, key } = ready;

  const upload = await ctx.store.openUpload(key, {
    contentType: link.contentType,
    sizeBytes: link.sizeBytes,
    signal,
    ...resumeTokenFor(job.uploadToken, key),
  });
  const digests = (ctx.hashPool ?? sharedHashPool()).open();
  try {
    await resumeStaged(run, upload, key, digests);
    const received = await transferWithResume(run, upload, digests, link);
    if ('outcome' in received) return received.outcome;
    const verified = await verify(run, upload, digests, received);
    if ('outcome' in verified) return verified.outcome;
    return await commit(run, upload, verified, received.link);
  } finally {
    // A path that neither committed nor discarded the upload (a failed URL
    // renewal, a lost lease, a full disk) parks it: its lock and file are
    // released and the next attempt resumes it. A no-op after commit or abort.
    digests.close();
    await upload.park().catch(() => undefined);
  }
}

/**
 * Everything settled before a byte is fetched: a channel never captured,
 * empty media, an object already stored by an earlier run. Otherwise the
 * link to fetch and the key it goes to.
 */
async function preflight(run: JobRun): Promise<Step<{ link: KnownLink; key: string }>> {
  const { ctx, job, signal } = run;
  const early = await ctx.source.preflight(job, signal);
  if (early) return { outcome: early };

  const known = await firstLink(run);
  if ('outcome' in known) return known;
  const link = known;
  // Renewed links point at the same object: what the first one told of its
  // size and type holds for them (the platform's links announce neither).
  run.freshLink = async () => {
    const answer = await checkedLink(run);
    if ('outcome' in answer) {
      throw new CxrecError('media_missing', 'the media link could not be renewed: media not found', {
        context: run.context,
        retryable: true,
      });
    }
    return {
      url: answer.link.url,
      contentType: answer.link.contentType ?? link.contentType,
      sizeBytes: answer.link.sizeBytes ?? link.sizeBytes,
    };
  };
  if (link.sizeBytes <= EMPTY_MEDIA_MAX_BYTES) {
    return {
      outcome: {
        kind: 'final',
        state: 'media_unavailable',
        reason: 'no audio: channel never captured or empty media',
        detail: `sizeBytes=${link.sizeBytes}`,
      },
    };
  }
  const { key, others } = objectKeys(job, link.contentType, ctx.layout, ctx.store.foldsCase);

  // Idempotent re-runs: an object already committed with the right size is
  // ours, whichever layout it was stored under (changing CXREC_LAYOUT never
  // downloads a stored object again).
  for (const candidate of [key, ...others]) {
    const existing = await ctx.store.head(candidate, { signal });
    if (!existing || existing.sizeBytes !== link.sizeBytes) continue;
    const digests =
      existing.md5 !== undefined && existing.sha256 !== undefined
        ? { md5: existing.md5, sha256: existing.sha256 }
        : await hashStored(ctx, candidate, signal);
    run.log.debug({ key: candidate }, 'already stored, not downloaded again');
    return {
      outcome: {
        kind: 'final',
        state: 'stored',
        reason: 'already in storage',
        stored: {
          key: candidate,
          sizeBytes: existing.sizeBytes,
          ...digests,
          contentType: link.contentType,
          storedAt: ctx.now(),
        },
      },
    };
  }
  return { link, key };
}

/** Records the upload in the ledger before its first byte, and hashes what an earlier attempt staged. */
async function resumeStaged(
  run: JobRun,
  upload: StagedUpload,
  key: string,
  digests: PooledDigests,
): Promise<void> {
  await run.ctx.recordUpload({
    token: encodeUploadRef({ key, token: upload.resumeToken }),
    bytes: upload.stagedBytes,
  });
  if (upload.stagedBytes > 0 && upload.readStaged) {
    await digests.consume(upload.readStaged({ signal: run.signal }), run.signal);
    run.log.debug({ resumedAt: upload.stagedBytes }, 'resuming a staged upload');
  }
}

/**
 * Fetches the media into the upload, resuming with Range from what is
 * staged after each break, until the host has sent everything, the
 * attempts run out, or the break says the job is over.
 */
async function transferWithResume(
  run: JobRun,
  upload: StagedUpload,
  digests: PooledDigests,
  firstLink: KnownLink,
): Promise<Step<Received>> {
  const { ctx, signal } = run;
  const maxAttempts = ctx.maxTransferAttempts ?? 6;
  const writer = batchedWriter(upload, digests, signal);
  let link = firstLink;
  for (let attempt = 1; ; attempt++) {
    if (upload.bytesWritten >= link.sizeBytes && upload.bytesWritten > 0) {
      // Everything is staged already (parked after the last byte): nothing
      // to fetch, and a Range from the end would answer 416. Check and commit.
      return { link, totalSize: link.sizeBytes, etagMd5: undefined };
    }
    try {
      const result = await transferMedia({
        url: new URL(link.url),
        offset: upload.bytesWritten,
        expectedSize: link.sizeBytes,
        dispatcher: ctx.dispatcher,
        signal,
        context: run.context,
        onChunk: async (chunk) => {
          ctx.onBytes?.(chunk.length);
          await writer.push(chunk);
        },
      });
      await writer.flush();
      return { link, totalSize: result.totalSize, etagMd5: result.etagMd5 };
    } catch (err) {
      // Bytes received before the break are the object's, in order: keep
      // them, so the resume asks only for what never arrived. A batch whose
      // write fails is neither staged nor hashed, so the resume fetches it again.
      await writer.flush().catch(() => undefined);
      switch (afterBreak(err, signal, attempt, maxAttempts)) {
        case 'stop':
          await upload.park().catch(() => undefined);
          throw err;
        case 'start over':
          // What is staged does not fit the object: start over from byte 0.
          await discard(upload, ctx);
          return { outcome: { kind: 'retry', error: err } };
        case 'media missing':
          await discard(upload, ctx);
          return { outcome: (await ctx.source.mediaMissing(run.job, 'missing', signal)) ?? failed(err) };
        case 'give up':
          await upload.park().catch(() => undefined);
          return { outcome: isRetryable(err) ? { kind: 'retry', error: err } : failed(err) };
        case 'new link':
          logResume(run, err, attempt, upload);
          link = await run.freshLink();
          break;
        case 'back off':
          logResume(run, err, attempt, upload);
          await sleep(backoffDelayMs(attempt, ctx.backoff), signal);
          break;
      }
    }
  }
}

/** What a broken transfer leads to. */
function afterBreak(
  err: unknown,
  signal: AbortSignal,
  attempt: number,
  maxAttempts: number,
): 'stop' | 'start over' | 'media missing' | 'give up' | 'new link' | 'back off' {
  if (isAbortError(err) || signal.aborted) return 'stop';
  if (err instanceof CxrecError && err.context.status === 416) return 'start over';
  if (err instanceof CxrecError && err.code === 'media_missing') return 'media missing';
  if (attempt >= maxAttempts || !(isRetryable(err) || isUrlRefused(err))) return 'give up';
  return isUrlRefused(err) ? 'new link' : 'back off';
}

function logResume(
  run: JobRun,
  err: unknown,
  attempt: number,
  upload: Pick<StagedUpload, 'bytesWritten'>,
): void {
  noteRetry('media');
  run.log.debug(
    { err: describeError(err), attempt, at: upload.bytesWritten },
    'media transfer interrupted, resuming',
  );
}

/**
 * The network hands over 16–64 KiB at a time; the bytes are gathered in
 * the hash pool's slots (1 MiB), each written to the store in one call and
 * hashed on a pool thread only after the store took it, so the digests
 * always cover exactly the staged bytes, even after a failed write.
 */
function batchedWriter(
  upload: StagedUpload,
  digests: PooledDigests,
  signal: AbortSignal,
): { push(chunk: Buffer): Promise<void>; flush(): Promise<void> } {
  const sink = (bytes: Buffer): Promise<void> => upload.write(bytes, { signal });
  return {
    push: (chunk) => digests.push(chunk, sink, signal),
    flush: () => digests.flush(sink),
  };
}

/**
 * The staged bytes must be the announced object: the announced size, the
 * host's size, the bytes hashed, and the ETag's md5 when it has one.
 * Returns their digests, or the outcome of a mismatch (the upload discarded).
 */
async function verify(
  run: JobRun,
  upload: StagedUpload,
  digests: PooledDigests,
  received: Received,
): Promise<Step<DigestResult>> {
  const { ctx, context } = run;
  const { link, totalSize } = received;
  const sizeBytes = upload.bytesWritten;
  if (totalSize !== link.sizeBytes || sizeBytes !== link.sizeBytes) {
    // The dialect may explain a short object (the Processing trap); one
    // it cannot explain is corrupt.
    await discard(upload, ctx);
    return {
      outcome: (await ctx.source.mediaMissing(run.job, 'incomplete', run.signal)) ?? {
        kind: 'retry',
        error: new CxrecError('integrity', 'size differs from the announced size', {
          context: { ...context, announced: link.sizeBytes, hostSize: totalSize, received: sizeBytes },
        }),
      },
    };
  }
  if (digests.sizeBytes !== sizeBytes) {
    // Cannot happen while the store keeps its promise that a failed write
    // counts nothing; if it breaks it, the digests would not be the object's.
    await discard(upload, ctx);
    return {
      outcome: {
        kind: 'retry',
        error: new CxrecError('integrity', 'bytes hashed differ from bytes staged', {
          context: { ...context, hashed: digests.sizeBytes, staged: sizeBytes },
        }),
      },
    };
  }
  const result = await digests.digest();
  if (received.etagMd5 !== undefined && received.etagMd5 !== result.md5) {
    await discard(upload, ctx);
    return {
      outcome: {
        kind: 'retry',
        error: new CxrecError('integrity', 'md5 differs from the media ETag', {
          context: { ...context, sizeBytes },
        }),
      },
    };
  }
  return result;
}

async function commit(
  run: JobRun,
  upload: StagedUpload,
  digests: DigestResult,
  link: KnownLink,
): Promise<JobOutcome> {
  const { sizeBytes, md5, sha256 } = digests;
  // A job whose lease went to another owner must not commit over its work.
  await run.ctx.confirmLease?.();
  const info = await upload.commit({
    sizeBytes,
    md5,
    sha256,
    contentType: link.contentType,
    signal: run.signal,
  });
  run.log.debug({ key: info.key, sizeBytes }, 'stored');
  return {
    kind: 'final',
    state: 'stored',
    reason: 'downloaded',
    stored: { key: info.key, sizeBytes, md5, sha256, contentType: link.contentType, storedAt: run.ctx.now() },
  };
}

/**
 * The key a row's object goes to, and the other keys it may already be
 * stored under. The key the ledger remembers for the row (its staged
 * upload's, chosen by an earlier attempt, perhaps under another layout)
 * wins, so a resume continues the bytes already staged; else the key
 * CXREC_LAYOUT gives. The others are the row's keys under every other
 * layout: an object committed there by an earlier run (or a run whose
 * ledger row was lost) is found instead of fetched again.
 */
export function objectKeys(
  job: Pick<JobRow, 'recordingId' | 'channel' | 'meta' | 'uploadToken'>,
  contentType: string,
  layout: Layout,
  foldsCase = false,
): { key: string; others: string[] } {
  const keyFor = (l: Layout): string =>
    recordingObjectKey(job.recordingId, job.channel, contentType, layoutFolder(l, job.meta.createdDate), {
      foldsCase,
    });
  const otherKey = (l: Layout): string[] => {
    try {
      return [keyFor(l)];
    } catch {
      return []; // a start no folder can be made of: that layout never stored this row
    }
  };
  const byLayout = [keyFor(layout), ...layouts.filter((l) => l !== layout).flatMap(otherKey)];
  const remembered = job.uploadToken === null ? undefined : decodeUploadRef(job.uploadToken)?.key;
  const key =
    remembered !== undefined && byLayout.includes(remembered) ? remembered : (byLayout[0] as string);
  return { key, others: byLayout.filter((k) => k !== key) };
}

function resumeTokenFor(stored: string | null, key: string): { resumeToken?: string } {
  const ref = stored === null ? undefined : decodeUploadRef(stored);
  return ref?.key === key ? { resumeToken: ref.token } : {};
}

/**
 * The first link of this job, with its size and type known: a link that
 * announces neither (the platform's) is probed on the media host (one
 * byte), refused links are asked for again, and a host that says the
 * media is gone hands the row to the dialect to judge.
 */
async function firstLink(run: JobRun): Promise<Step<KnownLink>> {
  const { ctx, job, signal } = run;
  const maxAttempts = ctx.maxTransferAttempts ?? 6;
  for (let attempt = 1; ; attempt++) {
    const answer = await checkedLink(run);
    if ('outcome' in answer) return answer;
    const { link } = answer;
    if (link.contentType !== undefined && link.sizeBytes !== undefined) {
      return { url: link.url, contentType: link.contentType, sizeBytes: link.sizeBytes };
    }
    try {
      const probed = await probeMedia({
        url: new URL(link.url),
        dispatcher: ctx.dispatcher,
        signal,
        context: run.context,
      });
      return {
        url: link.url,
        contentType: link.contentType ?? probed.contentType,
        sizeBytes: link.sizeBytes ?? probed.totalSize,
      };
    } catch (err) {
      if (err instanceof CxrecError && err.code === 'media_missing') {
        return { outcome: (await ctx.source.mediaMissing(job, 'missing', signal)) ?? failed(err) };
      }
      if (isAbortError(err) || signal.aborted || attempt >= maxAttempts) throw err;
      if (isUrlRefused(err)) continue;
      if (!isRetryable(err)) throw err;
      logResume(run, err, attempt, { bytesWritten: 0 });
      await sleep(backoffDelayMs(attempt, ctx.backoff), signal);
    }
  }
}

/** A new link from the dialect, refused unless its host is one CXREC_MEDIA_HOSTS allows. */
async function checkedLink(run: JobRun): Promise<LinkAnswer> {
  const { ctx, job, signal } = run;
  const answer = await ctx.source.mediaLink(job, signal);
  if ('outcome' in answer) return answer;
  const url = new URL(answer.link.url);
  const schemeProblem = urlSchemeProblem(answer.link.url);
  if (schemeProblem !== undefined) {
    throw new CxrecError('media_host_refused', `media URL ${schemeProblem}`, {
      context: { ...run.context, host: url.hostname },
    });
  }
  if (!hostAllowed(url.hostname, ctx.mediaHosts)) {
    throw new CxrecError(
      'media_host_refused',
      'media URL points to a host CXREC_MEDIA_HOSTS does not allow',
      { context: { ...run.context, host: url.hostname, allowed: ctx.mediaHosts.join(' ') } },
    );
  }
  return answer;
}

async function discard(upload: StagedUpload, ctx: DownloadContext): Promise<void> {
  await upload.abort();
  await ctx.recordUpload(null);
}

async function hashStored(
  ctx: DownloadContext,
  key: string,
  signal: AbortSignal,
): Promise<{ md5: string; sha256: string }> {
  const digests = (ctx.hashPool ?? sharedHashPool()).open();
  try {
    await digests.consume(await ctx.store.read(key, { signal }), signal);
    const { md5, sha256 } = await digests.digest();
    return { md5, sha256 };
  } finally {
    digests.close();
  }
}

function isUrlRefused(err: unknown): boolean {
  return err instanceof CxrecError && err.code === 'media_url_expired';
}

function failed(err: unknown): JobOutcome {
  return {
    kind: 'final',
    state: 'failed',
    reason: failureReason(err),
    detail: failureDetail(err),
    error: err,
  };
}
