/**
 * The media host behind presigned URLs (contract §5), S3-like: signature
 * and `Expires` checked on every request, XML errors, 404 NoSuchKey once
 * purged, and the Processing trap (missing or cut-short object). The
 * transfer itself (Range, ETag, faults, expiry mid-transfer) is
 * `serveMediaObject`, shared with the platform dialect's media host.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { SimulatorContext } from './context.js';
import { splitTarget } from './host-server.js';
import { mediaRefusal, refusedAnyUrl } from './media-refusal.js';
import { serveMediaObject } from './media-serve.js';

/** Re-encodes each path segment the one way `objectKey` encodes it, so `%21` and `!` name the same object. */
function canonicalPath(rawPath: string): string | undefined {
  try {
    return rawPath
      .split('/')
      .map((segment) => encodeURIComponent(decodeURIComponent(segment)))
      .join('/');
  } catch {
    return undefined;
  }
}

export async function mediaRoute(
  ctx: SimulatorContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { path: rawPath, query } = splitTarget(req);
  const { stats, faults, tenant } = ctx;
  const nowMs = Date.now();
  const answerError = mediaRefusal(res, (outcome) => stats.call('media', outcome));
  if (refusedAnyUrl(req, faults, answerError)) return;
  const path = canonicalPath(rawPath);
  const check =
    path === undefined
      ? ({ ok: false, reason: 'bad_signature' } as const)
      : ctx.presigner.check(path, query, nowMs);
  if (!check.ok) {
    if (check.reason === 'missing') answerError(403, 'AccessDenied', 'Access Denied');
    else
      answerError(
        403,
        'SignatureDoesNotMatch',
        check.reason === 'expired'
          ? 'Request has expired'
          : 'The request signature we calculated does not match the signature you provided.',
      );
    return;
  }
  const found = path === undefined ? undefined : tenant.objectByKey(path.slice('/media/'.length));
  if (!found) {
    answerError(404, 'NoSuchKey', 'The specified key does not exist.');
    return;
  }
  const { recording, channel } = found;
  const obj = recording.objects[channel];
  stats.mediaRequest(recording.id, channel, obj.key);
  const status = tenant.statusAt(recording, nowMs);
  if (tenant.isPurged(recording, nowMs) || status === 'Recording' || status === 'Failed') {
    answerError(404, 'NoSuchKey', 'The specified key does not exist.');
    return;
  }
  let length = obj.sizeBytes;
  let etagKind = obj.etagKind;
  if (status === 'Processing') {
    if (recording.processingMedia.kind === 'missing') {
      answerError(404, 'NoSuchKey', 'The specified key does not exist.');
      return;
    }
    // A partial upload is an object of its own: shorter, with its own md5 when small enough to have one.
    length = Math.max(1, Math.floor(obj.sizeBytes * recording.processingMedia.fraction));
    if (etagKind === 'md5' && length >= ctx.options.media.multipartThresholdBytes) etagKind = 'none';
  }
  await serveMediaObject(req, res, {
    obj,
    length,
    etagKind,
    lastModifiedMs: recording.createdMs,
    expiresMs: check.expiresMs,
    faults,
    outcome: (outcome) => stats.call('media', outcome),
    bytes: (n) => stats.mediaBytes(recording.id, channel, obj.key, n),
  });
}
