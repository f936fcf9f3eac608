/**
 * `CXREC_HTTP_PORT`: `/metrics` for Prometheus, `/healthz` (the process
 * loop is alive) and `/readyz` (the ledger is open, CXone granted a token
 * and nothing fatal has happened) for an orchestrator. Bound to all
 * interfaces, like any metrics endpoint; it serves no secret.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

export interface ServiceHealth {
  /** Liveness: false only when the service loop has stopped. */
  alive(): boolean;
  /** Readiness, with the reason when not ready. */
  ready(): { ok: boolean; reason: string };
}

export interface ServiceHttp {
  port: number;
  close(): Promise<void>;
}

export async function startServiceHttp(
  port: number,
  registry: Registry,
  health: ServiceHealth,
): Promise<ServiceHttp> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) =>
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`),
      );
      return;
    }
    if (path === '/healthz') {
      const ok = health.alive();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'stopped\n');
      return;
    }
    if (path === '/readyz') {
      const { ok, reason } = health.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${reason}\n`);
      return;
    }
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end('not found: try /metrics, /healthz or /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
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
