/**
 * The issuer host (contract §1–§2): the OpenID discovery document, the
 * token endpoint (password grant with an access key, refresh grant, client
 * authentication by HTTP Basic or in the body) and the tenant discovery
 * document. Nothing here counts against a budget.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import { answerBug, firstHeader, json, writeAnswer, type PlatformAnswer } from './answer.js';
import type { PlatformContext } from './context.js';
import type { PlatformRoute } from './stats.js';
import { createHostServer, readBodyOrRefuse, splitTarget } from '../host-server.js';

export const tenantArea = 'na1';

export function createIssuerServer(ctx: PlatformContext): Server {
  return createHostServer((req, res) => handle(ctx, req, res), answerBug);
}

async function handle(ctx: PlatformContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path, query } = splitTarget(req);
  let route: PlatformRoute = 'other';
  let answer: PlatformAnswer;
  const body = await readBodyOrRefuse(req, res);
  if (body === undefined) {
    ctx.stats.call('other', '413');
    return writeAnswer(res, json(413, { error: 'invalid_request' }));
  }
  if (path === '/.well-known/openid-configuration' && req.method === 'GET') {
    route = 'openid-configuration';
    answer = json(200, {
      issuer: ctx.urls.issuer,
      token_endpoint: `${ctx.urls.issuer}/auth/token`,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      grant_types_supported: ['password', 'refresh_token'],
      response_types_supported: ['token', 'id_token'],
      jwks_uri: `${ctx.urls.issuer}/.well-known/jwks`,
    });
  } else if (path === '/.well-known/cxone-configuration' && req.method === 'GET') {
    route = 'cxone-configuration';
    answer = cxoneConfiguration(ctx, query.get('tenantId'));
  } else if (path === '/auth/token') {
    route = 'token';
    if (req.method !== 'POST') answer = json(405, { error: 'method_not_allowed' });
    else if (ctx.faults.roll('serverError'))
      answer = json(ctx.faults.int(0, 1) === 0 ? 500 : 503, { error: 'server_error' });
    else answer = tokenEndpoint(ctx, req, body, Date.now());
  } else {
    answer = json(404, { error: 'not_found' });
  }
  ctx.stats.call(route, `${answer.status}`);
  writeAnswer(res, answer);
}

function cxoneConfiguration(ctx: PlatformContext, tenantId: string | null): PlatformAnswer {
  if (tenantId !== ctx.tenant.tenantId) return json(404, { error: 'not_found', message: 'Tenant not found' });
  return json(200, {
    private: false,
    area: tenantArea,
    cluster: 'B32',
    domain: 'niceincontact.com',
    acdDomain: 'nice-incontact.com',
    uhDomain: 'nice-incontact.com',
    ui_endpoint: ctx.urls.issuer,
    auth_endpoint: ctx.urls.issuer,
    api_endpoint: ctx.urls.api,
    tenantId: ctx.tenant.tenantId,
    ...(ctx.options.globalDomain ? { globaldomain: 'cxone.niceincontact.com' } : {}),
  });
}

/** HTTP Basic credentials; each part may be form-encoded (RFC 6749 §2.3.1) or not. */
function basicCredentials(req: IncomingMessage): { id: string; secrets: string[] } | 'malformed' | undefined {
  const auth = firstHeader(req.headers.authorization);
  if (auth === undefined || !/^Basic\b/i.test(auth)) return undefined;
  const m = /^Basic\s+(\S+)$/i.exec(auth);
  if (!m?.[1]) return 'malformed';
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  const raw = { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
  try {
    const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: unform(raw.id), secrets: [raw.secret, unform(raw.secret)] };
  } catch {
    return { id: raw.id, secrets: [raw.secret] };
  }
}

function tokenEndpoint(
  ctx: PlatformContext,
  req: IncomingMessage,
  body: Buffer,
  nowMs: number,
): PlatformAnswer {
  if (!/^application\/x-www-form-urlencoded\b/i.test(firstHeader(req.headers['content-type']) ?? '')) {
    return json(400, {
      error: 'invalid_request',
      error_description: 'the body must be application/x-www-form-urlencoded',
    });
  }
  const form = new URLSearchParams(body.toString('utf8'));
  const basic = basicCredentials(req);
  if (basic === 'malformed')
    return json(401, { error: 'invalid_client', error_description: 'Invalid client credentials' });
  const id = basic ? basic.id : form.get('client_id');
  const secrets = basic ? basic.secrets : [form.get('client_secret')];
  const app = ctx.options.applications.find((a) => a.id === id);
  if (!app || !secrets.includes(app.secret)) {
    return json(401, { error: 'invalid_client', error_description: 'Invalid client credentials' });
  }
  const grantType = form.get('grant_type');
  let accessKeyId: string;
  if (grantType === 'password') {
    const key = ctx.options.accessKeys.find((k) => k.id === form.get('username'));
    if (!key || key.active === false || key.secret !== form.get('password')) {
      // The other spelling of the description, so clients read both (contract §1).
      return json(400, { error: 'invalid_grant', errorDescription: 'Invalid access key id or secret' });
    }
    accessKeyId = key.id;
  } else if (grantType === 'refresh_token') {
    const refreshed = ctx.tokens.checkRefresh(form.get('refresh_token') ?? '', app.id, nowMs);
    const key = refreshed && ctx.options.accessKeys.find((k) => k.id === refreshed.accessKeyId);
    if (!key || key.active === false) {
      return json(400, { error: 'invalid_grant', error_description: 'Invalid or expired refresh token' });
    }
    accessKeyId = key.id;
  } else {
    return json(400, {
      error: 'unsupported_grant_type',
      error_description: `grant_type ${grantType ?? '(none)'} is not supported`,
    });
  }
  const t = ctx.tokens.issue(ctx.urls.issuer, accessKeyId, app.id, nowMs);
  return json(
    200,
    {
      access_token: t.accessToken,
      token_type: 'Bearer',
      expires_in: t.expiresIn,
      refresh_token: t.refreshToken,
      id_token: t.idToken,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    },
    { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
  );
}
