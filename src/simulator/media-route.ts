/**
 * The media host behind presigned URLs (contract §5), S3-like: signature
 * and `Expires` checked on every request, Range, 416, ETag, XML errors,
 * 404 NoSuchKey once purged, and the Processing trap (missing or cut-short
 * object).
 *
 * A transfer still streaming when `Expires` passes is cut off. A 403 cannot
 * be sent once a 200/206 status line has gone out, so the socket is
 * destroyed instead: the client sees a body shorter than `Content-Length`
 * and must come back with a new URL, where its next request gets the 403.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';

import type { SimulatorContext } from './context.js';
import { writeXmlError } from './http-io.js';
import { etagFor, mediaStream, parseRange } from './media.js';
import type { Channel } from './options.js';

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
  rawPath: string,
  query: URLSearchParams,
): Promise<void> {
  const { stats, faults, tenant } = ctx;
  const nowMs = Date.now();
  const answerError = (
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ) => {
    stats.call('media', `${status}`);
    writeXmlError(res, status, code, message, headers);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    answerError(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', {
      Allow: 'GET, HEAD',
    });
    return;
  }
  if (faults.roll('serverError')) {
    if (faults.int(0, 1) === 0)
      answerError(500, 'InternalError', 'We encountered an internal error. Please try again.');
    else answerError(503, 'SlowDown', 'Please reduce your request rate.');
    return;
  }
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
  const range = parseRange(req.headers.range, length);
  if (range.kind === 'unsatisfiable') {
    answerError(416, 'InvalidRange', 'The requested range is not satisfiable', {
      'Content-Range': `bytes */${length}`,
    });
    return;
  }
  const start = range.kind === 'partial' ? range.start : 0;
  const end = range.kind === 'partial' ? range.endInclusive + 1 : length;
  const etag = await etagFor(obj, etagKind, length);
  const headers: Record<string, string> = {
    'Content-Type': obj.contentType,
    'Content-Length': String(end - start),
    'Accept-Ranges': 'bytes',
    'Last-Modified': new Date(recording.createdMs).toUTCString(),
  };
  if (etag !== undefined) headers.ETag = etag;
  if (range.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end - 1}/${length}`;
  const statusCode = range.kind === 'partial' ? 206 : 200;
  if (req.method === 'HEAD') {
    stats.call('media', `${statusCode}`);
    res.writeHead(statusCode, headers);
    res.end();
    return;
  }
  streamBody(ctx, res, {
    statusCode,
    headers,
    start,
    end,
    channel,
    recordingId: recording.id,
    obj,
    expiresMs: check.expiresMs,
  });
}

function streamBody(
  ctx: SimulatorContext,
  res: ServerResponse,
  t: {
    statusCode: number;
    headers: Record<string, string>;
    start: number;
    end: number;
    channel: Channel;
    recordingId: string;
    obj: Parameters<typeof mediaStream>[0];
    expiresMs: number;
  },
): void {
  const { stats, faults } = ctx;
  const length = t.end - t.start;
  let cut: { at: number; how: 'reset' | 'short' } | undefined;
  if (length > 1 && faults.roll('connectionReset')) cut = { at: faults.cutPoint(length), how: 'reset' };
  else if (length > 1 && faults.roll('shortBody')) cut = { at: faults.cutPoint(length), how: 'short' };
  stats.call('media', cut ? cut.how : `${t.statusCode}`);
  res.writeHead(t.statusCode, t.headers);
  const source = mediaStream(t.obj, t.start, cut ? t.start + cut.at : t.end, (n) =>
    stats.mediaBytes(t.recordingId, t.channel, t.obj.key, n),
  );
  const socket = res.socket;
  const untilExpiry = Math.max(0, t.expiresMs - Date.now());
  // setTimeout fires at once past 2^31-1 ms; a URL living that long (24 days) needs no cut-off.
  const expiry =
    untilExpiry < 2 ** 31 - 1
      ? setTimeout(() => {
          if (res.writableFinished) return;
          stats.call('media', 'expired-mid-transfer');
          source.destroy();
          socket?.destroy();
        }, untilExpiry)
      : undefined;
  res.on('close', () => {
    clearTimeout(expiry);
    source.destroy();
  });
  if (!cut) {
    // Errors here are the client going away or the expiry above: nothing to answer any more.
    pipeline(source, res, () => undefined);
    return;
  }
  const how = cut.how;
  source.pipe(res, { end: false });
  source.on('end', () => {
    if (!socket || socket.destroyed) return;
    // `reset` sends a TCP RST; `short` a clean FIN before Content-Length bytes.
    if (how === 'reset') socket.resetAndDestroy();
    else socket.end();
  });
}
