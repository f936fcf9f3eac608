/**
 * The answers the platform hosts write: JSON, plain text, or no body at
 * all (a 204, or a classic-API 400 whose text is only in the
 * `icStatusDescription` header). Built first and written later, so the
 * server can still cut them with a fault.
 */
import type { ServerResponse } from 'node:http';

export interface PlatformAnswer {
  status: number;
  json?: unknown;
  text?: { body: string; contentType: string };
  headers?: Record<string, string>;
}

export function json(status: number, body: unknown, headers?: Record<string, string>): PlatformAnswer {
  return headers === undefined ? { status, json: body } : { status, json: body, headers };
}

/** A classic-API error: empty body, the text in `icStatusDescription` (contract §4, *defined here*). */
export function classicError(status: number, description: string): PlatformAnswer {
  return { status, headers: { icStatusDescription: description } };
}

export function serialize(answer: PlatformAnswer): { head: Record<string, string>; payload: Buffer } {
  let payload = Buffer.alloc(0);
  const head: Record<string, string> = {};
  if (answer.json !== undefined) {
    payload = Buffer.from(JSON.stringify(answer.json));
    head['Content-Type'] = 'application/json; charset=utf-8';
  } else if (answer.text !== undefined) {
    payload = Buffer.from(answer.text.body);
    head['Content-Type'] = answer.text.contentType;
  }
  if (answer.status !== 204) head['Content-Length'] = String(payload.length);
  return { head: { ...head, ...answer.headers }, payload };
}

export function writeAnswer(res: ServerResponse, answer: PlatformAnswer): void {
  const { head, payload } = serialize(answer);
  res.writeHead(answer.status, head);
  res.end(answer.status === 204 ? undefined : payload);
}

/** A request the simulator failed on (a bug): 500, with the error, so the test that met it says why. */
export function answerBug(res: ServerResponse, err: unknown): void {
  writeAnswer(res, json(500, { error: 'simulator_bug', message: String(err) }));
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
