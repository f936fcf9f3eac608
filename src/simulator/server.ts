/**
 * The HTTP front of the simulator: routing, the tenant rate limit on
 * `/api/v2/*`, the API-level faults, and the `/__stats` and `/__truth`
 * pages. Paths are routed on the raw request target, so a percent-encoded
 * id stays one segment exactly as the contract says the client sends it.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import { authenticate, recordingEndpoint, searchEndpoint, tokenEndpoint } from './api-routes.js';
import type { SimulatorContext } from './context.js';
import { faultKinds } from './faults.js';
import { jsonError, serializeJson, writeJson, type JsonAnswer } from './http-io.js';
import { mediaRoute } from './media-route.js';
import type { Endpoint, SimulatorStats } from './stats.js';
import { createHostServer, readBodyOrRefuse, splitTarget } from './host-server.js';

export function statsSnapshot(ctx: SimulatorContext): SimulatorStats {
  return ctx.stats.snapshot({
    limit: ctx.limiter.current === false ? false : { ...ctx.limiter.current },
    faults: Object.fromEntries(
      faultKinds.map((k) => [k, ctx.faults.injected[k]]),
    ) as SimulatorStats['faults'],
    cursors: {
      issued: ctx.cursors.issued,
      expired: ctx.cursors.expired,
      invalidated: ctx.cursors.invalidated,
    },
    listingInserts: ctx.tenant.insertedWhileListing,
  });
}

export function createSimulatorServer(ctx: SimulatorContext): Server {
  return createHostServer(
    (req, res) => handle(ctx, req, res),
    (res, err) => writeJson(res, jsonError(500, 'simulator_bug', { message: String(err) })),
    { longTransfers: true },
  );
}

async function handle(ctx: SimulatorContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path: rawPath } = splitTarget(req);

  if (rawPath.startsWith('/media/')) return mediaRoute(ctx, req, res);
  if (rawPath === '/__stats' && req.method === 'GET')
    return writeJson(res, { status: 200, body: statsSnapshot(ctx) });
  if (rawPath === '/__truth' && req.method === 'GET') {
    return writeJson(res, { status: 200, body: await ctx.tenant.truth(Date.now()) });
  }
  if (!rawPath.startsWith('/api/v2/')) {
    ctx.stats.call('other', '404');
    return writeJson(res, jsonError(404, 'not_found'));
  }
  return api(ctx, req, res);
}

type ApiRoute =
  | { endpoint: 'token' }
  | { endpoint: 'search' }
  | { endpoint: 'detail'; id: string }
  | { endpoint: 'download'; id: string }
  | { endpoint: 'other'; status: 404 | 405 };

function route(method: string, rawPath: string): ApiRoute {
  const segments = rawPath.split('/').slice(3); // '', 'api', 'v2'
  const [first, second, third, ...rest] = segments;
  if (first === 'oauth' && second === 'token' && third === undefined) {
    return method === 'POST' ? { endpoint: 'token' } : { endpoint: 'other', status: 405 };
  }
  if (first !== 'recording' || second === undefined || second === '' || rest.length > 0)
    return { endpoint: 'other', status: 404 };
  if (second === 'search' && third === undefined) {
    return method === 'GET' || method === 'POST'
      ? { endpoint: 'search' }
      : { endpoint: 'other', status: 405 };
  }
  let id: string;
  try {
    id = decodeURIComponent(second);
  } catch {
    return { endpoint: 'other', status: 404 };
  }
  if (third !== undefined && third !== 'download') return { endpoint: 'other', status: 404 };
  if (method !== 'GET') return { endpoint: 'other', status: 405 };
  return third === undefined ? { endpoint: 'detail', id } : { endpoint: 'download', id };
}

async function api(ctx: SimulatorContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path: rawPath, query } = splitTarget(req);
  const { stats, faults, limiter } = ctx;
  const r = route(req.method ?? 'GET', rawPath);
  const endpoint: Endpoint = r.endpoint;
  const body = await readBodyOrRefuse(req, res);
  if (body === undefined) {
    stats.call(endpoint, '413');
    return writeJson(res, jsonError(413, 'invalid_request', { error_description: 'body too large' }));
  }
  const nowMs = Date.now();
  stats.apiArrival(nowMs);
  if (faults.roll('rateLimitBurst')) limiter.startBurst(nowMs + faults.int(1000, 3000));
  const admission = limiter.admit(nowMs);
  if (!admission.ok) {
    stats.sentRetryAfter(nowMs, admission.retryAfterSeconds);
    stats.call(endpoint, '429');
    return writeJson(res, {
      status: 429,
      body: { error: 'too_many_requests' },
      headers: { 'Retry-After': String(admission.retryAfterSeconds) },
    });
  }
  stats.apiAccepted(nowMs);

  let answer: JsonAnswer;
  if (faults.roll('serverError')) {
    answer = faults.int(0, 1) === 0 ? jsonError(500, 'server_error') : jsonError(503, 'service_unavailable');
  } else {
    answer = dispatch(ctx, req, r, body, query, nowMs);
  }
  const { head, payload } = serializeJson(answer);
  if (payload.length > 1 && faults.roll('connectionReset')) {
    stats.call(endpoint, 'reset');
    res.writeHead(answer.status, head);
    res.write(payload.subarray(0, faults.cutPoint(payload.length)), () => res.socket?.resetAndDestroy());
    return;
  }
  stats.call(endpoint, `${answer.status}`);
  res.writeHead(answer.status, head);
  res.end(payload);
}

function dispatch(
  ctx: SimulatorContext,
  req: IncomingMessage,
  r: ApiRoute,
  body: Buffer,
  query: URLSearchParams,
  nowMs: number,
): JsonAnswer {
  if (r.endpoint === 'other')
    return r.status === 404 ? jsonError(404, 'not_found') : jsonError(405, 'method_not_allowed');
  if (r.endpoint === 'token') return tokenEndpoint(ctx, req, body, nowMs);
  const token = authenticate(ctx, req, nowMs);
  if ('status' in token) return token;
  switch (r.endpoint) {
    case 'search':
      return searchEndpoint(ctx, req, token, body, nowMs);
    case 'detail':
    case 'download':
      return recordingEndpoint(ctx, token, r.endpoint, r.id, query, nowMs);
  }
}
