/**
 * `GET …/contacts/completed` (contract §3): filters, ordering, offset
 * paging with `_links`, 204 for an empty page, the field spellings of old
 * API versions, all-string tenants, `fields=`, and the traps of paging a
 * live index — pages shorter than `top` that are not the last, and late
 * indexing that shifts every later offset.
 */
import { classicError, json, type PlatformAnswer } from './answer.js';
import type { PlatformContext } from './context.js';
import { nonVoiceMediaTypes } from './options.js';
import type { Leg } from './tenant.js';

/** ISO-8601 UTC with a literal `Z`; the only date form the simulator accepts (*defined here*). */
const zDate = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?Z$/;

export interface ApiVersion {
  major: number;
  minor: number;
}

export function parseVersion(segment: string | undefined): ApiVersion | undefined {
  const m = /^v(\d{1,3})\.(\d{1,3})$/.exec(segment ?? '');
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** Versions below v26.0 spell fields the old way (*defined here*). */
export function oldSpelling(v: ApiVersion): boolean {
  return v.major < 26;
}

interface ListingQuery {
  startMs: number;
  endMs: number;
  updatedSinceMs: number;
  mediaTypeId: number | undefined;
  orderBy: 'start' | 'update';
  top: number;
  skip: number;
  fields: string[] | undefined;
}

function parseDate(query: URLSearchParams, name: string): number | undefined | 'invalid' {
  const v = query.get(name);
  if (v === null) return undefined;
  const ms = Date.parse(v);
  return zDate.test(v) && Number.isFinite(ms) ? ms : 'invalid';
}

function parseInteger(query: URLSearchParams, name: string, min: number, max: number, fallback: number) {
  const v = query.get(name);
  if (v === null) return fallback;
  const n = Number(v);
  return /^\d+$/.test(v) && n >= min && n <= max ? n : 'invalid';
}

function parseQuery(query: URLSearchParams): ListingQuery | PlatformAnswer {
  const dates: Record<string, number | undefined> = {};
  for (const name of ['startDate', 'endDate', 'updatedSince']) {
    const d = parseDate(query, name);
    if (d === 'invalid')
      return classicError(400, `Invalid ${name}: an ISO-8601 UTC date ending in Z is required`);
    dates[name] = d;
  }
  const startMs = dates.startDate ?? -Infinity;
  const endMs = dates.endDate ?? Infinity;
  if (endMs < startMs) return classicError(400, 'endDate must not be before startDate');
  const mediaType = query.get('mediaTypeId');
  if (mediaType !== null && !/^\d{1,3}$/.test(mediaType)) return classicError(400, 'Invalid mediaTypeId');
  const orderByRaw = (query.get('orderBy') ?? 'contactStartDate asc').trim();
  let orderBy: 'start' | 'update';
  if (/^(contactStartDate|contactStart)( asc)?$/i.test(orderByRaw)) orderBy = 'start';
  else if (/^lastUpdateTime( asc)?$/i.test(orderByRaw)) orderBy = 'update';
  else return classicError(400, `Invalid orderBy: ${orderByRaw}`);
  const top = parseInteger(query, 'top', 1, 10_000, 10_000);
  if (top === 'invalid') return classicError(400, 'Invalid top: 1..10000');
  const skip = parseInteger(query, 'skip', 0, Number.MAX_SAFE_INTEGER, 0);
  if (skip === 'invalid') return classicError(400, 'Invalid skip');
  const fieldsRaw = query.get('fields');
  return {
    startMs,
    endMs,
    updatedSinceMs: dates.updatedSince ?? -Infinity,
    mediaTypeId: mediaType === null ? undefined : Number(mediaType),
    orderBy,
    top,
    skip,
    fields:
      fieldsRaw === null
        ? undefined
        : fieldsRaw
            .split(',')
            .map((f) => f.trim())
            .filter((f) => f !== ''),
  };
}

function isoMs(ms: number): string {
  return new Date(ms).toISOString();
}

/** One listed contact, spelled as `version` spells it. */
export function renderLeg(ctx: PlatformContext, leg: Leg, version: ApiVersion): Record<string, unknown> {
  const mediaTypeName = leg.mediaTypeId === 4 ? 'Call' : (nonVoiceMediaTypes[leg.mediaTypeId] ?? 'Other');
  const old = oldSpelling(version);
  const item: Record<string, unknown> = {
    contactId: Number(leg.contactId),
    masterContactId: Number(leg.masterContactId),
    [old ? 'contactStart' : 'contactStartDate']: isoMs(leg.startMs),
    lastUpdateTime: isoMs(leg.indexedAtMs),
    // Old versions name the media type id `mediaType` and send it as a string (contract §3).
    ...(old ? { mediaType: String(leg.mediaTypeId) } : { mediaTypeId: leg.mediaTypeId }),
    mediaTypeName,
    agentId: leg.agentId,
    firstName: leg.firstName,
    lastName: leg.lastName,
    skillId: leg.skillId,
    skillName: leg.skillName,
    teamId: leg.teamId,
    campaignId: leg.campaignId,
    [old ? 'fromAddr' : 'fromAddress']: leg.fromAddress,
    [old ? 'toAddr' : 'toAddress']: leg.toAddress,
    isOutbound: leg.isOutbound,
    totalDurationSeconds: leg.durationSeconds,
    abandoned: leg.abandoned,
    isLogged: true,
    endReason: leg.endReason,
    ...(old ? { ACWSeconds: 0, confSeconds: 0 } : {}),
  };
  if (!ctx.options.stringValues) return item;
  return Object.fromEntries(
    Object.entries(item).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v)]),
  );
}

export function completedContacts(
  ctx: PlatformContext,
  version: ApiVersion,
  rawPath: string,
  query: URLSearchParams,
  nowMs: number,
): PlatformAnswer {
  const q = parseQuery(query);
  if ('status' in q) return q;
  if (q.skip > 0) ctx.tenant.maybeIndexWhileListing(q.startMs, q.endMs, nowMs);
  let hits = ctx.tenant
    .indexedLegs(nowMs)
    .filter(
      (l) =>
        l.startMs >= q.startMs &&
        l.startMs < q.endMs &&
        l.indexedAtMs >= q.updatedSinceMs &&
        (q.mediaTypeId === undefined || l.mediaTypeId === q.mediaTypeId),
    );
  if (q.orderBy === 'update') {
    hits = [...hits].sort((a, b) => a.indexedAtMs - b.indexedAtMs || a.contactId.localeCompare(b.contactId));
  }
  let page = hits.slice(q.skip, q.skip + q.top);
  if (page.length === 0) return { status: 204 };
  const more = hits.length > q.skip + page.length;
  // A page may hold fewer rows than `top` and still not be the last: `_links.next` says where to go on.
  if (more && page.length > 1 && ctx.shapes.chance(ctx.options.shortPages)) {
    page = page.slice(0, page.length - ctx.shapes.int(1, Math.min(page.length - 1, Math.ceil(q.top / 4))));
  }
  const link = (skip: number): string => {
    const p = new URLSearchParams(query);
    p.set('skip', String(skip));
    if (!p.has('top')) p.set('top', String(q.top));
    return `${ctx.urls.api}${rawPath}?${p.toString()}`;
  };
  const selfQuery = query.toString();
  const items = page.map((leg) => {
    const item = renderLeg(ctx, leg, version);
    return q.fields === undefined
      ? item
      : Object.fromEntries(Object.entries(item).filter(([k]) => q.fields?.includes(k)));
  });
  const businessUnitId = ctx.options.stringValues
    ? String(ctx.tenant.businessUnitId)
    : ctx.tenant.businessUnitId;
  return json(200, {
    totalRecords: ctx.options.stringValues ? String(hits.length) : hits.length,
    businessUnitId,
    lastPollTime: new Date(nowMs).toISOString(),
    _links: {
      self: `${ctx.urls.api}${rawPath}${selfQuery === '' ? '' : `?${selfQuery}`}`,
      next: more ? link(q.skip + page.length) : null,
      previous: q.skip > 0 ? link(Math.max(0, q.skip - q.top)) : null,
    },
    completedContacts: items,
  });
}

export function hierarchy(ctx: PlatformContext, contactId: string): PlatformAnswer {
  const leg = /^\d{1,15}$/.test(contactId) ? ctx.tenant.leg(contactId) : undefined;
  const master = leg && ctx.tenant.master(leg.masterContactId);
  if (!leg || !master) return classicError(404, 'Contact not found');
  return json(200, {
    masterContactId: Number(master.masterContactId),
    childContacts: master.legs.map((l) => ({
      contactId: Number(l.contactId),
      startTime: isoMs(l.startMs),
      endTime: isoMs(l.startMs + l.durationSeconds * 1000),
    })),
  });
}
