/**
 * Hostile hosts cannot fill the disk or memory (issue 12, point 8): a
 * media answer telling another size than announced is not read, no byte
 * past the announced size is handed on, and API JSON bodies are capped.
 * Real HTTP servers on port 0 send what a hostile host would.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { Agent } from 'undici';

import { CxoneClient } from '../../../src/cxone/client.js';
import { SlidingWindowRateLimiter } from '../../../src/cxone/rate-limiter.js';
import { maxJsonBodyBytes } from '../../../src/cxone/transport.js';
import { CxrecError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { transferMedia } from '../../../src/pipeline/media-transfer.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Offers `total` bytes in 1 MiB writes with backpressure; resolves with how many the socket took. */
function offer(res: ServerResponse, total: number): Promise<number> {
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  let sent = 0;
  return new Promise((resolve) => {
    res.on('close', () => resolve(sent));
    const pump = (): void => {
      while (sent < total && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (sent >= total) res.end();
    };
    pump();
  });
}

describe('bounded bodies from hostile hosts', () => {
  let server: Server;
  let base: string;
  let handler: Handler = (_req, res) => res.end();
  const agent = new Agent();

  before(async () => {
    server = createServer((req, res) => handler(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await agent.close();
    server.closeAllConnections();
    server.close();
  });

  async function transfer(
    offset: number,
    expectedSize: number,
  ): Promise<{ chunks: number; bytes: number; result?: unknown; err?: unknown }> {
    let chunks = 0;
    let bytes = 0;
    try {
      const result = await transferMedia({
        url: new URL(`${base}/media`),
        offset,
        expectedSize,
        dispatcher: agent,
        context: { recordingId: 'r1' },
        onChunk: (c) => {
          chunks += 1;
          bytes += c.length;
          return Promise.resolve();
        },
      });
      return { chunks, bytes, result };
    } catch (err) {
      return { chunks, bytes, err };
    }
  }

  test('a 200 whose Content-Length is not the announced size is not read', async () => {
    let offered: Promise<number> | undefined;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(64 * 1024 * 1024) });
      offered = offer(res, 64 * 1024 * 1024);
    };
    const out = await transfer(0, 4096);
    assert.equal(out.err, undefined);
    assert.equal(out.chunks, 0, 'no byte handed to the store');
    assert.deepEqual(out.result, { totalSize: 64 * 1024 * 1024, etagMd5: undefined, bytes: 0 });
    assert.ok((await offered!) < 64 * 1024 * 1024, 'the body was not read to its end');
  });

  test('a 206 whose Content-Range total is not the announced size is not read', async () => {
    handler = (_req, res) => {
      res.writeHead(206, {
        'content-type': 'audio/wav',
        'content-range': 'bytes 100-99999/100000',
        'content-length': String(100000 - 100),
      });
      res.end(Buffer.alloc(100000 - 100));
    };
    const out = await transfer(100, 4096);
    assert.equal(out.chunks, 0);
    assert.equal((out.result as { totalSize: number }).totalSize, 100000);
  });

  test('a 206 whose Content-Length disagrees with its Content-Range is refused', async () => {
    handler = (_req, res) => {
      res.writeHead(206, {
        'content-type': 'audio/wav',
        'content-range': 'bytes 100-4095/4096',
        'content-length': String(1_000_000),
      });
      res.end(Buffer.alloc(1_000_000));
    };
    const out = await transfer(100, 4096);
    assert.equal(out.chunks, 0);
    assert.ok(out.err instanceof CxrecError && out.err.code === 'invalid_response', String(out.err));
  });

  test('a host sending more than it announced never gets past the announced size', async () => {
    let offered: Promise<number> | undefined;
    handler = (req, _res) => {
      // Honest headers, then far more body than they promise, on a raw socket.
      req.socket.write(
        'HTTP/1.1 200 OK\r\ncontent-type: audio/wav\r\ncontent-length: 4096\r\nconnection: close\r\n\r\n',
      );
      const chunk = Buffer.alloc(1024 * 1024, 0x41);
      let sent = 0;
      offered = new Promise((resolve) => {
        req.socket.on('close', () => resolve(sent));
        req.socket.on('error', () => resolve(sent));
        const pump = (): void => {
          while (sent < 64 * 1024 * 1024 && !req.socket.destroyed) {
            sent += chunk.length;
            if (!req.socket.write(chunk)) {
              req.socket.once('drain', pump);
              return;
            }
          }
          req.socket.end();
        };
        pump();
      });
    };
    const out = await transfer(0, 4096);
    assert.equal(out.bytes, 4096, `handed ${out.bytes} bytes: ${String(out.err)}`);
    await offered;
  });

  test('an API JSON body over the cap is refused with a clear error, unread', async () => {
    let offered: Promise<number> | undefined;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) });
      offered = offer(res, 64 * 1024 * 1024);
    };
    const err = await accessError();
    assert.ok(err instanceof CxrecError, String(err));
    assert.equal(err.code, 'invalid_response');
    assert.match(err.message, /16 MiB/);
    assert.ok((await offered!) < 64 * 1024 * 1024);
  });

  test('a chunked API JSON body is read no further than the cap', async () => {
    let offered: Promise<number> | undefined;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no Content-Length
      offered = offer(res, 4 * maxJsonBodyBytes);
    };
    const err = await accessError();
    assert.ok(err instanceof CxrecError, String(err));
    assert.equal(err.code, 'invalid_response');
    assert.match(err.message, /16 MiB/);
    const sent = await offered!;
    assert.ok(sent < 2 * maxJsonBodyBytes, `the server got ${sent} bytes out`);
  });

  async function accessError(): Promise<unknown> {
    const client = new CxoneClient({
      apiUrl: base,
      clientId: 'id',
      clientSecret: 'secret',
      rateLimiter: new SlidingWindowRateLimiter({ limit: 100 }),
      backoffBaseMs: 1,
      logger: createLogger({ level: 'silent' }),
    });
    try {
      await client.checkAccess();
      return undefined;
    } catch (err) {
      return err;
    } finally {
      await client.close();
    }
  }
});
