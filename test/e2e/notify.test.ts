/**
 * `CXREC_NOTIFY_URL`: a local HTTP server receives what `export` and `run`
 * post: retried when the receiver fails first, never holding up an export
 * whose receiver never answers, never carrying a secret.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { request } from 'undici';

import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { runCli, startCli } from '../helpers/run-cli.js';

interface Receiver {
  url: string;
  bodies: Record<string, unknown>[];
  requests: number;
  close(): Promise<void>;
}

/** A webhook: `answer(n)` decides the HTTP status of the n-th request (1-based), or `hang` to never answer. */
async function startReceiver(answer: (n: number) => number | 'hang'): Promise<Receiver> {
  const hung: ServerResponse[] = [];
  const receiver: Receiver = {
    url: '',
    bodies: [],
    requests: 0,
    close: async () => {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      receiver.requests++;
      const status = answer(receiver.requests);
      if (status === 'hang') {
        hung.push(res);
        return;
      }
      if (status < 300) receiver.bodies.push(JSON.parse(text) as Record<string, unknown>);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // The path stands for the webhook's secret token.
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/secret-hook-token`;
  return receiver;
}

describe('notifications', () => {
  let sim: Simulator;
  let dir: string;
  let since: string;

  before(async () => {
    sim = await startSimulator({
      recordings: 8,
      seed: 5,
      timeScale: 600,
      rateLimit: { requests: 100_000, windowSeconds: 60 },
      mix: { lateIndexed: 0, stillProcessing: 0 },
      media: { minBytes: 2048, maxBytes: 8192 },
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-notify-'));
    since = (await sim.truth()).createdFrom;
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const env = (name: string, notifyUrl: string): NodeJS.ProcessEnv => ({
    CXONE_API_URL: sim.url,
    CXONE_CLIENT_ID: 'cxrec-demo',
    CXONE_CLIENT_SECRET: 'demo-secret',
    CXREC_STORAGE: join(dir, name, 'store'),
    CXREC_STATE: join(dir, name, 'state.db'),
    CXREC_RATE_LIMIT: '100000',
    CXREC_POLL_SECONDS: '0.05',
    CXREC_BACKOFF_SECONDS: '0.05',
    CXREC_NOTIFY_URL: notifyUrl,
  });

  test('export: a receiver failing first gets the summary on a retry: text, counts, window, exit code', async () => {
    const receiver = await startReceiver((n) => (n === 1 ? 503 : 200));
    try {
      const res = await runCli(['export', '--since', since], env('retried', receiver.url));
      assert.equal(res.code, 0, res.stderr);
      assert.equal(receiver.requests, 2, 'one refusal, then delivered');
      assert.equal(receiver.bodies.length, 1);
      const body = receiver.bodies[0]!;
      assert.equal(body.event, 'export_finished');
      assert.equal(typeof body.text, 'string');
      assert.match(body.text as string, /cxrec export .* finished: \d+ stored/);
      assert.equal(body.exitCode, 0);
      assert.equal((body.window as { since: string }).since, new Date(since).toISOString());
      const counts = body.counts as Record<string, number>;
      assert.equal(
        Object.values(counts).reduce((a, b) => a + b, 0),
        8,
      );
      assert.ok(counts.stored! > 0);
      assert.equal(typeof body.durationSeconds, 'number');
      const raw = JSON.stringify(body);
      assert.doesNotMatch(raw, /demo-secret|secret-hook-token/);
      assert.doesNotMatch(
        res.stderr + res.stdout,
        /secret-hook-token/,
        'the webhook URL is never logged whole',
      );
    } finally {
      await receiver.close();
    }
  });

  test('export: a receiver that never answers does not hold the export (bounded wait), and is reported', async () => {
    const receiver = await startReceiver(() => 'hang');
    try {
      const res = await runCli(['export', '--since', since], env('hang', receiver.url));
      assert.equal(res.code, 0, res.stderr);
      assert.ok(receiver.requests >= 1);
      assert.match(res.stderr, /notification not delivered/);
      assert.match(res.stderr, /http:\/\/127\.0\.0\.1:\d+/);
      assert.doesNotMatch(res.stderr, /secret-hook-token/);
    } finally {
      await receiver.close();
    }
  });

  test('run: recordings ending failed are notified in one batch; /metrics shows the last discovery', async () => {
    const receiver = await startReceiver(() => 200);
    const run = startCli(['run'], {
      ...env('run', receiver.url),
      // Every media URL points at the simulator: refusing its host ends each recording `failed`.
      CXREC_MEDIA_HOSTS: 'media.elsewhere.example',
      CXREC_DISCOVER_SECONDS: '0.5',
      CXREC_HTTP_PORT: '0',
      CXREC_LOG_LEVEL: 'info',
    });
    let stderr = '';
    run.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const until = Date.now() + 30_000;
      while (receiver.bodies.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert.equal(receiver.bodies.length, 1, 'one notification for the batch');
      const body = receiver.bodies[0]!;
      assert.equal(body.event, 'recordings_failed');
      assert.ok((body.failed as number) > 1, 'several failures in one notification');
      assert.match(body.text as string, /recordings? ended failed: .*media/);
      assert.ok(Object.keys(body.reasons as object).length >= 1);

      const port = /"port":(\d+)[^\n]*serving[^\n]*\/metrics/.exec(stderr)?.[1];
      assert.ok(port, 'the metrics port is logged');
      const metrics = await (await request(`http://127.0.0.1:${port}/metrics`)).body.text();
      const last = /^cxrec_last_discovery_success_timestamp_seconds (\S+)$/m.exec(metrics)?.[1];
      assert.ok(last !== undefined && Number(last) > 0, metrics.slice(0, 400));
      assert.match(metrics, /^cxrec_rate_limit_per_minute 100000$/m);
    } finally {
      run.child.kill('SIGTERM');
      const res = await run.done;
      await receiver.close();
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stderr, /secret-hook-token/);
    }
  });
});
