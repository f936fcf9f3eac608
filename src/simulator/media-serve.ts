/**
 * One media object's transfer as an S3-like host answers it, shared by the
 * recording-api media route and the platform dialect's media host: Range
 * and 416, `ETag`, `HEAD`, the transfer faults (reset, short body, stall)
 * and the cut-off when the presigned URL expires mid-transfer.
 *
 * A 403 cannot be sent once a 200/206 status line has gone out, so an
 * expiry mid-transfer destroys the socket instead: the client sees a body
 * shorter than `Content-Length` and must come back with a new URL, where
 * its next request gets the 403.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';

import type { FaultInjector } from './faults.js';
import { writeXmlError } from './http-io.js';
import { etagFor, mediaStream, parseRange, type AnyMediaObject } from './media.js';
import type { EtagKind } from './options.js';
import type { CallOutcome } from './call-counts.js';

export interface MediaTransfer {
  obj: AnyMediaObject;
  /** Bytes the host holds for the object now (shorter than `obj.sizeBytes` for a partial upload). */
  length: number;
  etagKind: EtagKind;
  lastModifiedMs: number;
  /** Wall-clock ms when the presigned URL expires. */
  expiresMs: number;
  faults: FaultInjector;
  /**
   * Real ms a stalled transfer holds the connection before dropping it.
   * Absent: the host never rolls the stall fault (so the dice of a host
   * without stalls stay where they were).
   */
  stallRealMs?: number;
  outcome(outcome: CallOutcome): void;
  bytes(n: number): void;
}

export async function serveMediaObject(
  req: IncomingMessage,
  res: ServerResponse,
  t: MediaTransfer,
): Promise<void> {
  const { obj, length } = t;
  const range = parseRange(req.headers.range, length);
  if (range.kind === 'unsatisfiable') {
    t.outcome('416');
    writeXmlError(res, 416, 'InvalidRange', 'The requested range is not satisfiable', {
      'Content-Range': `bytes */${length}`,
    });
    return;
  }
  const start = range.kind === 'partial' ? range.start : 0;
  const end = range.kind === 'partial' ? range.endInclusive + 1 : length;
  const etag = await etagFor(obj, t.etagKind, length);
  const headers: Record<string, string> = {
    'Content-Type': obj.contentType,
    'Content-Length': String(end - start),
    'Accept-Ranges': 'bytes',
    'Last-Modified': new Date(t.lastModifiedMs).toUTCString(),
  };
  if (etag !== undefined) headers.ETag = etag;
  if (range.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end - 1}/${length}`;
  const statusCode = range.kind === 'partial' ? 206 : 200;
  if (req.method === 'HEAD') {
    t.outcome(`${statusCode}`);
    res.writeHead(statusCode, headers);
    res.end();
    return;
  }
  streamBody(res, t, { statusCode, headers, start, end });
}

function streamBody(
  res: ServerResponse,
  t: MediaTransfer,
  b: { statusCode: number; headers: Record<string, string>; start: number; end: number },
): void {
  const { faults } = t;
  const length = b.end - b.start;
  let cut: { at: number; how: 'reset' | 'short' | 'stall' } | undefined;
  if (length > 1 && faults.roll('connectionReset')) cut = { at: faults.cutPoint(length), how: 'reset' };
  else if (length > 1 && faults.roll('shortBody')) cut = { at: faults.cutPoint(length), how: 'short' };
  else if (length > 1 && t.stallRealMs !== undefined && faults.roll('stall'))
    cut = { at: faults.cutPoint(length), how: 'stall' };
  t.outcome(cut ? cut.how : `${b.statusCode}`);
  res.writeHead(b.statusCode, b.headers);
  const source = mediaStream(t.obj, b.start, cut ? b.start + cut.at : b.end, (n) => t.bytes(n));
  const socket = res.socket;
  const untilExpiry = Math.max(0, t.expiresMs - Date.now());
  let stallTimer: NodeJS.Timeout | undefined;
  // setTimeout fires at once past 2^31-1 ms; a URL living that long (24 days) needs no cut-off.
  const expiry =
    untilExpiry < 2 ** 31 - 1
      ? setTimeout(() => {
          if (res.writableFinished) return;
          t.outcome('expired-mid-transfer');
          source.destroy();
          socket?.destroy();
        }, untilExpiry)
      : undefined;
  res.on('close', () => {
    clearTimeout(expiry);
    clearTimeout(stallTimer);
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
    // `reset` sends a TCP RST; `short` a clean FIN before Content-Length bytes; `stall` sends
    // nothing more and drops the connection only after the stall time, as a hung host would.
    if (how === 'reset') socket.resetAndDestroy();
    else if (how === 'short') socket.end();
    else stallTimer = setTimeout(() => socket.destroy(), t.stallRealMs ?? 0);
  });
}
