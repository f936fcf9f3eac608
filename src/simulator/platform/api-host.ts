/**
 * The API host (`api_endpoint`): the two budgets, bearer authentication,
 * the classic APIs' `Accept` rule and Reporting permission, the API-level
 * faults, and `/__stats` and `/__truth`, which count against nothing.
 *
 * Budgets count each request on arrival once accepted (contract §5): a
 * refused 429 does not count, and a 429 carries no `Retry-After`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import { answerBug, firstHeader, json, serialize, writeAnswer, type PlatformAnswer } from './answer.js';
import { completedContacts, hierarchy, parseVersion } from './completed-contacts.js';
import type { PlatformContext } from './context.js';
import { playback } from './playback.js';
import type { BudgetName, PlatformRoute } from './stats.js';
import { createHostServer, readBodyOrRefuse, splitTarget } from '../host-server.js';

type ApiRoute =
  | { route: 'completed-contacts'; version: string | undefined }
  | { route: 'hierarchy'; version: string | undefined; contactId: string }
  | { route: 'playback' }
  | { route: 'other' };

function classify(method: string, path: string): ApiRoute {
  if (method !== 'GET') return { route: 'other' };
  if (path === '/media-playback/v1/contacts') return { route: 'playback' };
  const s = path.split('/');
  // '', 'inContactAPI', 'services', version, 'contacts', …
  if (s[1] === 'inContactAPI' && s[2] === 'services' && s[4] === 'contacts') {
    if (s[5] === 'completed' && s.length === 6) return { route: 'completed-contacts', version: s[3] };
    if (s[6] === 'hierarchy' && s.length === 7 && s[5] !== undefined)
      return { route: 'hierarchy', version: s[3], contactId: s[5] };
  }
  return { route: 'other' };
}

const routeTemplates: Record<PlatformRoute, string> = {
  'openid-configuration': '/.well-known/openid-configuration',
  'cxone-configuration': '/.well-known/cxone-configuration',
  token: '/auth/token',
  'completed-contacts': '/inContactAPI/services/{version}/contacts/completed',
  hierarchy: '/inContactAPI/services/{version}/contacts/{contactId}/hierarchy',
  playback: '/media-playback/v1/contacts',
  media: '/media',
  other: '/',
};

export function createApiServer(ctx: PlatformContext): Server {
  return createHostServer((req, res) => handle(ctx, req, res), answerBug);
}

async function handle(ctx: PlatformContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path, query } = splitTarget(req);
  if (path === '/__stats' && req.method === 'GET') return writeAnswer(res, json(200, ctx.snapshot()));
  if (path === '/__truth' && req.method === 'GET')
    return writeAnswer(res, json(200, await ctx.tenant.truth(Date.now())));

  const r = classify(req.method ?? 'GET', path);
  if ((await readBodyOrRefuse(req, res)) === undefined) {
    ctx.stats.call(r.route, '413');
    return writeAnswer(res, json(413, { message: 'Request body too large' }));
  }
  const budget: BudgetName = r.route === 'playback' ? 'playback' : 'other';
  const { faults, stats } = ctx;
  const limiter = ctx.limiters[budget];
  const counter = stats.budgets[budget];
  const nowMs = Date.now();
  counter.arrival(nowMs);
  if (faults.roll('rateLimitBurst')) limiter.startBurst(nowMs + faults.int(1000, 3000));
  if (!limiter.admit(nowMs).ok) {
    counter.sent429++;
    stats.call(r.route, '429');
    // No Retry-After: the platform does not say when to come back (contract §4).
    return writeAnswer(res, json(429, { message: 'Too Many Requests', route: routeTemplates[r.route] }));
  }
  counter.accept(nowMs);

  const answer = faults.roll('serverError')
    ? json(faults.int(0, 1) === 0 ? 500 : 503, { message: 'Internal server error' })
    : dispatch(ctx, req, r, path, query, nowMs);
  const { head, payload } = serialize(answer);
  if (payload.length > 1 && faults.roll('connectionReset')) {
    stats.call(r.route, 'reset');
    res.writeHead(answer.status, head);
    res.write(payload.subarray(0, faults.cutPoint(payload.length)), () => res.socket?.resetAndDestroy());
    return;
  }
  stats.call(r.route, `${answer.status}`);
  res.writeHead(answer.status, head);
  res.end(answer.status === 204 ? undefined : payload);
}

/** The access key behind the bearer token, or the 401 to answer. Rolls the revocation fault. */
function authenticate(ctx: PlatformContext, req: IncomingMessage, nowMs: number): string | PlatformAnswer {
  const m = /^Bearer\s+(\S+)$/i.exec(firstHeader(req.headers.authorization) ?? '');
  const live = m?.[1] === undefined ? undefined : ctx.tokens.checkAccess(m[1], nowMs);
  if (live && ctx.faults.roll('tokenRevocation')) ctx.tokens.revokeAccess(live.jti);
  else if (live) return live.accessKeyId;
  // The body of a 401 may be empty or not JSON (contract §1): all three shapes turn up.
  switch (ctx.shapes.int(0, 2)) {
    case 0:
      return { status: 401 };
    case 1:
      return {
        status: 401,
        text: { body: '<html><body><h1>401 Unauthorized</h1></body></html>', contentType: 'text/html' },
      };
    default:
      return json(401, {
        error: 'invalid_token',
        error_description: 'The access token is expired or revoked',
      });
  }
}

/** True when `Accept` names application/json; `*\/*` alone does not count (contract §3). */
function acceptsJson(req: IncomingMessage): boolean {
  const accept = firstHeader(req.headers.accept) ?? '';
  return accept.split(',').some((part) => part.split(';')[0]?.trim().toLowerCase() === 'application/json');
}

function dispatch(
  ctx: PlatformContext,
  req: IncomingMessage,
  r: ApiRoute,
  path: string,
  query: URLSearchParams,
  nowMs: number,
): PlatformAnswer {
  if (r.route === 'other') return json(404, { message: 'Not Found' });
  const accessKeyId = authenticate(ctx, req, nowMs);
  if (typeof accessKeyId !== 'string') return accessKeyId;
  if (r.route === 'playback') return playback(ctx, accessKeyId, query, nowMs);
  const version = parseVersion(r.version);
  if (!version)
    return { status: 404, headers: { icStatusDescription: `Unknown API version ${r.version ?? ''}` } };
  if (!acceptsJson(req))
    return {
      status: 406,
      text: { body: 'No known way to render data', contentType: 'text/plain; charset=utf-8' },
    };
  const key = ctx.options.accessKeys.find((k) => k.id === accessKeyId);
  if (key?.reporting === false)
    return {
      status: 403,
      headers: { icStatusDescription: 'Forbidden: the user may not perform this action' },
    };
  return r.route === 'completed-contacts'
    ? completedContacts(ctx, version, path, query, nowMs)
    : hierarchy(ctx, r.contactId);
}
