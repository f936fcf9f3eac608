/**
 * The HTTP server under each simulated host (the recording API's one, and
 * the platform dialect's issuer, API and media hosts), and the parts of a
 * request every host reads the same way.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import { BodyTooLarge, readBody } from './http-io.js';

export interface HostServerOptions {
  /** The host streams media: a 2 GiB transfer to a slow client must not be timed out by the server. */
  longTransfers?: boolean;
}

/**
 * A server running `handle` per request. A rejection is a bug in the
 * simulator: it must show up in the test that met it, not as a hang, so
 * it is answered by `answerBug` while no header is out, else the
 * connection is dropped.
 */
export function createHostServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  answerBug: (res: ServerResponse, err: unknown) => void,
  options: HostServerOptions = {},
): Server {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) answerBug(res, err);
      else res.destroy();
    });
  });
  if (options.longTransfers === true) server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  return server;
}

/**
 * The path of the raw request target, still percent-encoded (so an
 * encoded id stays one segment, as clients send it), and its query.
 */
export function splitTarget(req: IncomingMessage): { path: string; query: URLSearchParams } {
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  return {
    path: q < 0 ? target : target.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
  };
}

/**
 * The request body, or undefined when it is over the limit: the connection
 * is then marked to close, and the caller answers 413 its own way.
 */
export async function readBodyOrRefuse(
  req: IncomingMessage,
  res: ServerResponse,
): Promise<Buffer | undefined> {
  try {
    return await readBody(req);
  } catch (err) {
    if (!(err instanceof BodyTooLarge)) throw err;
    res.setHeader('Connection', 'close');
    return undefined;
  }
}
