/**
 * The HTTP service of `cxrec run` / `cxrec ui` (issue 12 point 11): the
 * listening address, one ledger read per scrape period however many
 * scrapers, and short codes instead of error texts.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, describe, test } from 'node:test';

import { Gauge, Registry } from 'prom-client';

import { loadConfig } from '../../../src/config.js';
import { CxrecError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { startServiceHttp, type ServiceHttp } from '../../../src/service/http-server.js';
import { statusPageSource } from '../../../src/service/status-data.js';
import { openSqliteLedger } from '../../../src/state/sqlite.js';

const log = createLogger({ level: 'error' });
const servers: ServiceHttp[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

function get(
  host: string,
  port: number,
  path: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A registry whose one gauge counts how often it was collected (a ledger read, in cxrec's). */
function countingRegistry(fail?: () => Error): { registry: Registry; reads: () => number } {
  const registry = new Registry();
  let reads = 0;
  new Gauge({
    name: 'reads',
    help: 'collections',
    registers: [registry],
    async collect() {
      reads++;
      await new Promise((r) => setTimeout(r, 20));
      if (fail) throw fail();
      this.set(reads);
    },
  });
  return { registry, reads: () => reads };
}

describe('CXREC_HTTP_HOST', () => {
  test('defaults to 127.0.0.1; IP addresses and host names are taken', () => {
    const env = { CXONE_API_URL: 'https://api.example.com', CXONE_CLIENT_ID: 'c', CXONE_CLIENT_SECRET: 's' };
    assert.equal(loadConfig({ env: { ...env } }).httpHost, '127.0.0.1');
    for (const host of ['0.0.0.0', '::', '::1', '10.1.2.3', 'localhost', 'cxrec.internal.example.com']) {
      assert.equal(loadConfig({ env: { ...env, CXREC_HTTP_HOST: host } }).httpHost, host);
    }
  });

  test('a scheme, a port or garbage is refused, naming the setting (exit 2)', () => {
    const env = { CXONE_API_URL: 'https://api.example.com', CXONE_CLIENT_ID: 'c', CXONE_CLIENT_SECRET: 's' };
    for (const host of ['http://0.0.0.0', '0.0.0.0:9464', '[::1]', '999.1.1.1', 'a b', 'host/path']) {
      assert.throws(
        () => loadConfig({ env: { ...env, CXREC_HTTP_HOST: host } }),
        (err: unknown) => {
          assert.ok(err instanceof CxrecError);
          assert.equal(err.exitCode, 2);
          assert.match(err.message, /CXREC_HTTP_HOST must be an IP address/);
          return true;
        },
        host,
      );
    }
  });

  test('the server listens on that address only', async () => {
    const { registry } = countingRegistry();
    const http = await startServiceHttp({ host: '127.0.0.1', port: 0, log, metrics: registry });
    servers.push(http);
    assert.equal((await get('127.0.0.1', http.port, '/metrics')).status, 200);
    // Another loopback address of this machine: bound to every interface, it would answer.
    await assert.rejects(get('127.0.0.2', http.port, '/metrics'), /ECONNREFUSED/);
  });

  test('an address this machine does not have is a settings error naming CXREC_HTTP_HOST', async () => {
    await assert.rejects(startServiceHttp({ host: '192.0.2.1', port: 0, log }), (err: unknown) => {
      assert.ok(err instanceof CxrecError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /CXREC_HTTP_HOST=192\.0\.2\.1/);
      return true;
    });
  });
});

describe('/metrics', () => {
  test('many scrapers at once, and scrapes in a loop, cost one read per period', async () => {
    const { registry, reads } = countingRegistry();
    const http = await startServiceHttp({
      host: '127.0.0.1',
      port: 0,
      log,
      metrics: registry,
      cacheMs: 60_000,
    });
    servers.push(http);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => get('127.0.0.1', http.port, '/metrics')),
    );
    for (let i = 0; i < 20; i++) answers.push(await get('127.0.0.1', http.port, '/metrics'));
    assert.ok(answers.every((a) => a.status === 200 && /^reads 1$/m.test(a.body)));
    assert.equal(reads(), 1);
  });

  test('a read is repeated once the period has passed', async () => {
    const { registry, reads } = countingRegistry();
    const http = await startServiceHttp({ host: '127.0.0.1', port: 0, log, metrics: registry, cacheMs: 0 });
    servers.push(http);
    await get('127.0.0.1', http.port, '/metrics');
    await get('127.0.0.1', http.port, '/metrics');
    assert.equal(reads(), 2);
  });

  test('a failed read answers a short code, never the error text, and is not kept', async () => {
    const { registry, reads } = countingRegistry(
      () => new Error('SQLITE_BUSY at postgres://cxrec:hunter2@db/cxrec'),
    );
    const http = await startServiceHttp({
      host: '127.0.0.1',
      port: 0,
      log,
      metrics: registry,
      cacheMs: 60_000,
    });
    servers.push(http);
    const a = await get('127.0.0.1', http.port, '/metrics');
    assert.equal(a.status, 500);
    assert.equal(a.body, 'metrics_unavailable\n');
    await get('127.0.0.1', http.port, '/metrics');
    assert.equal(reads(), 2);
  });
});

describe('/readyz, /healthz and unknown paths', () => {
  test('answer short codes', async () => {
    let ready = { ok: false, code: 'starting' };
    const http = await startServiceHttp({
      host: '127.0.0.1',
      port: 0,
      log,
      health: { alive: () => true, ready: () => ready },
    });
    servers.push(http);
    assert.deepEqual(await get('127.0.0.1', http.port, '/readyz').then((r) => [r.status, r.body]), [
      503,
      'starting\n',
    ]);
    ready = { ok: true, code: 'ready' };
    assert.deepEqual(await get('127.0.0.1', http.port, '/readyz').then((r) => [r.status, r.body]), [
      200,
      'ready\n',
    ]);
    assert.deepEqual(await get('127.0.0.1', http.port, '/healthz').then((r) => [r.status, r.body]), [
      200,
      'ok\n',
    ]);
    const missing = await get('127.0.0.1', http.port, '/nope');
    assert.equal(missing.status, 404);
    assert.match(missing.body, /^not_found/);
  });
});

describe('the status page route', () => {
  test('serves the page, its assets and a search; a ledger failure is a short code', async () => {
    const ledger = await openSqliteLedger(':memory:');
    const now = Date.now();
    await ledger.upsertDiscovered([
      {
        recordingId: '<b>evil</b>',
        channel: 'combined',
        state: 'pending',
        nextRunAt: now + 1e9,
        meta: { recordingId: '<b>evil</b>', status: 'Available', createdDate: '2026-01-01T00:00:00Z' },
      },
    ]);
    const http = await startServiceHttp({
      host: '127.0.0.1',
      port: 0,
      log,
      status: statusPageSource({ ledger, mode: 'ui', rateLimitPerMinute: 50, now: () => Date.now() }),
    });
    servers.push(http);
    const page = await get('127.0.0.1', http.port, '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    assert.match(page.body, /data-state="pending">1</);
    const found = await get('127.0.0.1', http.port, `/?q=${encodeURIComponent('<b>evil</b>')}`);
    assert.ok(found.body.includes('&lt;b&gt;evil&lt;/b&gt;'));
    assert.ok(!found.body.includes('<b>evil'));
    const lib = await get('127.0.0.1', http.port, '/assets/uPlot.iife.min.js');
    assert.equal(lib.status, 200);
    assert.match(lib.body, /uPlot/);
    assert.equal((await get('127.0.0.1', http.port, '/assets/../package.json')).status, 404);
    await ledger.close();
    const broken = await get('127.0.0.1', http.port, '/?q=x');
    assert.equal(broken.status, 500);
    assert.equal(broken.body, 'status_unavailable\n');
  });
});
