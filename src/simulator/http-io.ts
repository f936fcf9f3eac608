/**
 * Reading request bodies and writing the two answer shapes the platform
 * uses: JSON from the API and S3-style XML from the media host. Every
 * answer carries `Content-Length`, as the real hosts do.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An API answer, built first and written later so faults can cut it. */
export interface JsonAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const maxBodyBytes = 1024 * 1024;

export class BodyTooLarge extends Error {}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBodyBytes) throw new BodyTooLarge('request body over 1 MiB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export function jsonError(status: number, error: string, extra: Record<string, unknown> = {}): JsonAnswer {
  return { status, body: { error, ...extra } };
}

export function serializeJson(answer: JsonAnswer): { head: Record<string, string>; payload: Buffer } {
  const payload = Buffer.from(JSON.stringify(answer.body));
  return {
    head: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(payload.length),
      ...answer.headers,
    },
    payload,
  };
}

export function writeJson(res: ServerResponse, answer: JsonAnswer): void {
  const { head, payload } = serializeJson(answer);
  res.writeHead(answer.status, head);
  res.end(payload);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An S3 error document: `<Error><Code>…</Code><Message>…</Message></Error>`. */
export function writeXmlError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  const payload = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error>`,
  );
  res.writeHead(status, {
    'Content-Type': 'application/xml',
    'Content-Length': String(payload.length),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : payload);
}
