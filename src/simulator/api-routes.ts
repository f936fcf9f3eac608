/**
 * The four API endpoints of the contract (§1–§4). Each returns its answer
 * instead of writing it, so the server can still cut it with a fault.
 */
import type { IncomingMessage } from 'node:http';

import type { SimulatorContext } from './context.js';
import { jsonError, type JsonAnswer } from './http-io.js';
import { channels, type Channel } from './options.js';
import { parseSearchBody, type SearchQuery } from './search-query.js';
import type { TenantRecording } from './tenant.js';
import type { IssuedToken } from './tokens.js';
import { iso } from './wire-time.js';

const readScope = 'recording:read';
const downloadScope = 'recording:download';

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `Authorization: Basic` credentials, each part form-urlencoded as RFC 6749 §2.3.1 says. */
function basicCredentials(req: IncomingMessage): { id: string; secret: string } | 'malformed' | undefined {
  const auth = header(req, 'authorization');
  const m = auth === undefined ? null : /^Basic\s+(\S+)$/i.exec(auth);
  if (!m?.[1]) return auth !== undefined && /^Basic\b/i.test(auth) ? 'malformed' : undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  try {
    const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
  } catch {
    return 'malformed';
  }
}

export function tokenEndpoint(
  ctx: SimulatorContext,
  req: IncomingMessage,
  body: Buffer,
  nowMs: number,
): JsonAnswer {
  const contentType = header(req, 'content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
    return jsonError(400, 'invalid_request', {
      error_description: 'the body must be application/x-www-form-urlencoded',
    });
  }
  const form = new URLSearchParams(body.toString('utf8'));
  const basic = basicCredentials(req);
  if (basic === 'malformed') return jsonError(401, 'invalid_client');
  const inBody = form.has('client_id') || form.has('client_secret');
  if (basic && inBody) {
    // RFC 6749 §2.3: a client must not use more than one authentication method per request.
    return jsonError(400, 'invalid_request', {
      error_description: 'credentials in both the header and the body',
    });
  }
  const id = basic ? basic.id : form.get('client_id');
  const secret = basic ? basic.secret : form.get('client_secret');
  const client = ctx.options.clients.find((c) => c.id === id);
  if (!client || secret === null || client.secret !== secret) {
    return jsonError(401, 'invalid_client', {}) satisfies JsonAnswer;
  }
  const grantType = form.get('grant_type');
  if (grantType === null)
    return jsonError(400, 'invalid_request', { error_description: 'grant_type is missing' });
  if (grantType !== 'client_credentials') return jsonError(400, 'unsupported_grant_type');
  const requested = form.get('scope');
  // Only the scopes bound to the API client count; user-bound ones are ignored for this grant (contract §1).
  const granted =
    requested === null
      ? [...client.scopes]
      : [...new Set(requested.split(/\s+/).filter((s) => s !== ''))].filter((s) => client.scopes.includes(s));
  const { accessToken, expiresIn } = ctx.tokens.issue(client.id, granted, nowMs);
  ctx.stats.tokensIssued++;
  return {
    status: 200,
    body: {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: expiresIn,
      scope: granted.join(' '),
    },
    headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
  };
}

/** The bearer token behind an API call, or the 401 to answer. Rolls the rotation fault. */
export function authenticate(
  ctx: SimulatorContext,
  req: IncomingMessage,
  nowMs: number,
): IssuedToken | JsonAnswer {
  const m = /^Bearer\s+(\S+)$/i.exec(header(req, 'authorization') ?? '');
  const accessToken = m?.[1];
  const check = accessToken === undefined ? { ok: false as const } : ctx.tokens.check(accessToken, nowMs);
  if (accessToken !== undefined && check.ok && ctx.faults.roll('tokenRevocation')) {
    ctx.tokens.revoke(accessToken);
    ctx.stats.tokensRevoked++;
    return invalidToken(ctx);
  }
  return check.ok ? check.token : invalidToken(ctx);
}

function invalidToken(ctx: SimulatorContext): JsonAnswer {
  ctx.stats.tokensRejected++;
  return {
    status: 401,
    body: { error: 'invalid_token' },
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
  };
}

function requireScope(token: IssuedToken, scope: string): JsonAnswer | undefined {
  return token.scopes.includes(scope) ? undefined : jsonError(403, 'insufficient_scope', { required: scope });
}

function searchFields(ctx: SimulatorContext, r: TenantRecording, nowMs: number) {
  return {
    recordingId: r.id,
    contactId: r.contactId,
    status: ctx.tenant.statusAt(r, nowMs),
    createdDate: iso(r.createdMs),
    durationSeconds: r.durationSeconds,
    direction: r.direction,
    agentId: r.agentId,
    skillName: r.skillName,
  };
}

export function searchEndpoint(
  ctx: SimulatorContext,
  req: IncomingMessage,
  token: IssuedToken,
  body: Buffer,
  nowMs: number,
): JsonAnswer {
  const denied = requireScope(token, readScope);
  if (denied) return denied;
  let parsedBody: unknown = {};
  if (body.length > 0) {
    if (!/^application\/json\b/i.test(header(req, 'content-type') ?? '')) {
      return jsonError(400, 'invalid_request', { error_description: 'the body must be application/json' });
    }
    try {
      parsedBody = JSON.parse(body.toString('utf8'));
    } catch {
      return jsonError(400, 'invalid_request', { error_description: 'the body is not JSON' });
    }
  }
  const parsed = parseSearchBody(parsedBody);
  let query: SearchQuery;
  let offset = 0;
  switch (parsed.kind) {
    case 'invalid':
      return jsonError(400, 'invalid_request', { error_description: parsed.message });
    case 'first':
      query = parsed.query;
      break;
    case 'next': {
      if (ctx.faults.roll('cursorInvalidation')) {
        ctx.cursors.invalidate(parsed.pageToken);
        return jsonError(400, 'invalid_page_token');
      }
      const found = ctx.cursors.resolve(parsed.pageToken, nowMs);
      if (!found.ok) return jsonError(400, 'invalid_page_token');
      ({ query, offset } = found.state);
      ctx.tenant.maybeInsertWhileListing(query, nowMs);
      break;
    }
  }
  const page = ctx.tenant.page(query, offset, nowMs);
  return {
    status: 200,
    body: {
      recordings: page.items.map((r) => searchFields(ctx, r, nowMs)),
      nextPageToken: page.more
        ? ctx.cursors.issue({ query, offset: offset + page.items.length }, nowMs)
        : null,
    },
  };
}

/**
 * `GET /recording/{id}` (detail) and `GET /recording/{id}/download`: each
 * needs its scope, then a recording that exists.
 */
export function recordingEndpoint(
  ctx: SimulatorContext,
  token: IssuedToken,
  endpoint: 'detail' | 'download',
  id: string,
  query: URLSearchParams,
  nowMs: number,
): JsonAnswer {
  const denied = requireScope(token, endpoint === 'detail' ? readScope : downloadScope);
  if (denied) return denied;
  const r = ctx.tenant.get(id);
  if (!r) return jsonError(404, 'not_found');
  return endpoint === 'detail' ? detail(ctx, r, nowMs) : download(ctx, r, query, nowMs);
}

function detail(ctx: SimulatorContext, r: TenantRecording, nowMs: number): JsonAnswer {
  return {
    status: 200,
    body: {
      ...searchFields(ctx, r, nowMs),
      availableChannels: [...r.captured],
      ...(r.retentionFieldPresent ? { retentionExpiresAt: iso(r.retentionExpiresAtMs) } : {}),
    },
  };
}

function download(
  ctx: SimulatorContext,
  r: TenantRecording,
  query: URLSearchParams,
  nowMs: number,
): JsonAnswer {
  const channel = query.get('channel');
  if (channel === null || !(channels as readonly string[]).includes(channel)) {
    return jsonError(400, 'invalid_request', {
      error_description: `channel must be one of ${channels.join(', ')}`,
    });
  }
  // The trap of §4: the URL is issued whatever the status; only the media host tells.
  const obj = r.objects[channel as Channel];
  const signed = ctx.presigner.sign(`/media/${obj.key}`, nowMs + ctx.options.presignedUrlTtlRealMs);
  ctx.stats.downloadUrlsIssued++;
  return {
    status: 200,
    body: { url: `${ctx.baseUrl}${signed}`, contentType: obj.contentType, sizeBytes: obj.sizeBytes, channel },
  };
}
