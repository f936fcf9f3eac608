/**
 * `GET /media-playback/v1/contacts?acd-call-id=…` (contract §4): the
 * playback permission first (so any id tells 403 from 404), then the
 * master contact's voice interactions with a presigned `fileToPlayUrl`
 * each, or 404 "Interaction Not Found" for every reason the platform does
 * not tell apart (processing, no recording, purged, a leg's own id, before
 * 13 Dec 2018).
 */
import { json, type PlatformAnswer } from './answer.js';
import type { PlatformContext } from './context.js';

export const notFound: PlatformAnswer = json(404, {
  internalCode: 'MP-404-001',
  message: 'Interaction Not Found',
});

function isoMs(ms: number): string {
  return new Date(ms).toISOString();
}

export function playback(
  ctx: PlatformContext,
  accessKeyId: string,
  query: URLSearchParams,
  nowMs: number,
): PlatformAnswer {
  const key = ctx.options.accessKeys.find((k) => k.id === accessKeyId);
  if (key?.playback === false) {
    // The message names no permission (contract §4): the exporter must name it.
    return json(403, { internalCode: 'MP-403-001', message: 'Access denied' });
  }
  const id = query.get('acd-call-id');
  if (id === null || !/^\d{1,19}$/.test(id)) {
    return json(400, { internalCode: 'MP-400-001', message: 'acd-call-id is required and must be numeric' });
  }
  const mediaType = query.get('media-type') ?? 'voice-only';
  if (!['voice-only', 'all'].includes(mediaType)) {
    return json(400, { internalCode: 'MP-400-002', message: `Unknown media-type ${mediaType}` });
  }
  ctx.stats.askedAbout(id);
  const master = ctx.tenant.master(id);
  const interactions = master ? ctx.tenant.playable(master, nowMs) : undefined;
  if (!master || !interactions) {
    ctx.stats.notFound++;
    return notFound;
  }
  const expiresMs = nowMs + ctx.options.presignedUrlTtlRealMs;
  const urls = interactions.map(
    (it) => `${ctx.urls.media}${ctx.presigner.sign(`/media/${it.obj.key}`, expiresMs)}`,
  );
  ctx.stats.found++;
  ctx.stats.mediaUrlsIssued += urls.length;
  if (query.get('isDownload') === 'true') return json(200, { redirectUrl: urls[0] });
  const agent = master.legs[0];
  return json(200, {
    contactId: master.recordingUuid,
    acdcontactId: master.masterContactId,
    elevatedInteraction: false,
    interactions: interactions.map((it, i) => ({
      mediaType: 'voice-only',
      channelType: 'PHONE_CALL',
      startTime: isoMs(it.startMs),
      endTime: isoMs(it.endMs),
      data: {
        fileToPlayUrl: urls[i],
        startTime: isoMs(it.startMs),
        endTime: isoMs(it.endMs),
        participantDataList: [
          {
            participantType: 'AGENT',
            agentId: String(agent?.agentId ?? ''),
            name: `${agent?.firstName ?? ''} ${agent?.lastName ?? ''}`.trim(),
          },
          {
            participantType: 'CUSTOMER',
            phoneNumber: agent?.isOutbound ? agent.toAddress : (agent?.fromAddress ?? ''),
          },
        ],
        segmentsDataList: [
          {
            segmentId: `${master.recordingUuid}-${i + 1}`,
            startTime: isoMs(it.startMs),
            endTime: isoMs(it.endMs),
            openReasonType: i === 0 ? 'CALL_START' : 'RESUME',
            closeReasonType: i === interactions.length - 1 ? 'CALL_END' : 'HOLD',
          },
        ],
      },
    })),
  });
}
