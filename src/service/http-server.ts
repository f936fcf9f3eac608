/**
 * The HTTP side of `cxrec run` (`CXREC_HTTP_PORT`) and `cxrec ui`: the
 * status page `/` with its assets, `/metrics` for Prometheus, `/healthz`
 * (the process loop is alive) and `/readyz` (the ledger is open, CXone
 * granted a token and nothing fatal has happened) for an orchestrator.
 *
 * Listens on `CXREC_HTTP_HOST` (default 127.0.0.1). A scrape and the page
 * are read at most once per `cacheMs` whatever the number of clients
 * (`CachedRead`), so scrapes in a loop cannot keep the ledger busy. Errors
 * and `/readyz` answer with a short code; the error itself goes to the log.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

import { CxrecError, systemCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobRow } from '../state/ledger.js';
import { CachedRead } from './cached-read.js';
import { statusAsset } from './status-assets.js';
import { renderStatusPage, type StatusPageModel } from './status-page.js';

export interface ServiceHealth {
  /** Liveness: false only when the service loop has stopped. */
  alive(): boolean;
  /** Readiness, with a short code (`ready`, `starting`, `stopping`, …): never an error text. */
  ready(): { ok: boolean; code: string };
}

/** What the status page reads. */
export interface StatusPageSource {
  model(): Promise<StatusPageModel>;
  find(id: string, limit: number): Promise<JobRow[]>;
}

export interface ServiceHttpOptions {
  host: string;
  port: number;
  log: Logger;
  metrics?: Registry | undefined;
  health?: ServiceHealth | undefined;
  status?: StatusPageSource | undefined;
  /** How long one scrape and one page model are reused. @default 5000 */
  cacheMs?: number;
}

export interface ServiceHttp {
  port: number;
  close(): Promise<void>;
}

/** Rows a search shows at most. */
export const searchLimit = 50;
/** The longest id a search takes. */
const maxQueryLength = 200;

const pageHeaders = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
};

function plain(
  res: ServerResponse,
  status: number,
  code: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${code}\n`);
}

export async function startServiceHttp(options: ServiceHttpOptions): Promise<ServiceHttp> {
  const { log, metrics, health, status } = options;
  const cacheMs = options.cacheMs ?? 5000;
  const scrape = metrics ? new CachedRead(() => metrics.metrics(), cacheMs) : undefined;
  const model = status ? new CachedRead(() => status.model(), cacheMs) : undefined;
  const routes = [status && '/', metrics && '/metrics', health && '/healthz', health && '/readyz']
    .filter((r): r is string => typeof r === 'string')
    .join(' ');

  const failed = (res: ServerResponse, code: string, err: unknown): void => {
    log.warn({ err, code }, 'the HTTP service could not answer');
    if (!res.headersSent) plain(res, 500, code);
    else res.destroy();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://cxrec.invalid');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, 405, 'method_not_allowed', { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/metrics' && scrape && metrics) {
      const text = await scrape.get().catch((err: unknown) => failed(res, 'metrics_unavailable', err));
      if (text !== undefined) res.writeHead(200, { 'content-type': metrics.contentType }).end(text);
      return;
    }
    if (path === '/healthz' && health) {
      const ok = health.alive();
      plain(res, ok ? 200 : 503, ok ? 'ok' : 'stopped');
      return;
    }
    if (path === '/readyz' && health) {
      const { ok, code } = health.ready();
      plain(res, ok ? 200 : 503, code);
      return;
    }
    if (path === '/' && status && model) {
      try {
        const q = (url.searchParams.get('q') ?? '').trim().slice(0, maxQueryLength);
        const base = await model.get();
        const page =
          q === ''
            ? base
            : { ...base, search: { query: q, rows: await status.find(q, searchLimit), limit: searchLimit } };
        res.writeHead(200, pageHeaders).end(renderStatusPage(page));
      } catch (err) {
        failed(res, 'status_unavailable', err);
      }
      return;
    }
    const asset = status ? statusAsset(path) : undefined;
    if (asset) {
      res
        .writeHead(200, {
          'content-type': asset.contentType,
          'cache-control': 'max-age=3600',
          'x-content-type-options': 'nosniff',
        })
        .end(asset.body);
      return;
    }
    plain(res, 404, `not_found: try ${routes}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => failed(res, 'internal_error', err));
  });
  await new Promise<void>((resolve, reject) => {
    const refused = (err: Error): void => {
      const code = systemCode(err) ?? 'error';
      const why =
        code === 'EADDRINUSE'
          ? 'the port is in use'
          : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
            ? 'no interface of this machine has that address'
            : code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : code;
      reject(
        new CxrecError(
          'config_invalid',
          `cannot listen on CXREC_HTTP_HOST=${options.host} port ${options.port}: ${why}`,
          { cause: err },
        ),
      );
    };
    server.once('error', refused);
    server.listen(options.port, options.host, () => {
      server.off('error', refused);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
