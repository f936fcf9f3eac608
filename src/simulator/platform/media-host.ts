/**
 * The media host behind `fileToPlayUrl` (contract §4): neither the issuer
 * nor the API host. The presigned query is checked on every request (an
 * expired URL gets 403 with an XML body); the transfer is the shared
 * `serveMediaObject` (Range → 206, an md5 or `-N` ETag, `audio/mp4` or
 * `audio/wav`) with the break-off and stall faults. It counts against no
 * budget.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import { mediaRefusal, refusedAnyUrl } from '../media-refusal.js';
import { serveMediaObject } from '../media-serve.js';
import { answerBug } from './answer.js';
import type { PlatformContext } from './context.js';
import { createHostServer, splitTarget } from '../host-server.js';

export function createMediaServer(ctx: PlatformContext): Server {
  return createHostServer((req, res) => handle(ctx, req, res), answerBug, { longTransfers: true });
}

async function handle(ctx: PlatformContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { stats, faults, tenant } = ctx;
  const { path, query } = splitTarget(req);
  const nowMs = Date.now();
  const fail = mediaRefusal(res, (outcome) => stats.call('media', outcome));
  if (refusedAnyUrl(req, faults, fail)) return;
  if (!path.startsWith('/media/')) {
    fail(404, 'NoSuchKey', 'The specified key does not exist.');
    return;
  }
  const check = ctx.presigner.check(path, query, nowMs);
  if (!check.ok) {
    if (check.reason === 'missing') fail(403, 'AccessDenied', 'Access Denied');
    else
      fail(
        403,
        check.reason === 'expired' ? 'AccessDenied' : 'SignatureDoesNotMatch',
        check.reason === 'expired'
          ? 'Request has expired'
          : 'The request signature we calculated does not match the signature you provided.',
      );
    return;
  }
  const found = tenant.mediaObject(path.slice('/media/'.length));
  if (!found || tenant.isPurged(found.master, nowMs)) {
    fail(404, 'NoSuchKey', 'The specified key does not exist.');
    return;
  }
  const { master, interaction } = found;
  const obj = interaction.obj;
  stats.mediaRequest(master.masterContactId, obj.key);
  await serveMediaObject(req, res, {
    obj,
    length: obj.sizeBytes,
    etagKind: obj.etagKind,
    lastModifiedMs: master.readyAtMs,
    expiresMs: check.expiresMs,
    faults,
    stallRealMs: ctx.options.stallRealMs,
    outcome: (outcome) => stats.call('media', outcome),
    bytes: (n) => stats.mediaBytes(master.masterContactId, obj.key, n),
  });
}
