/**
 * One GET of a presigned media URL, from a byte offset to the end, handing
 * each chunk to the caller. It classifies every way the media host can fail
 * (contract §5) so the download can decide: 403 → new URL, 404 → purged or
 * the Processing trap, 5xx/reset/short body → retry from what is written.
 * The URL itself never appears in an error: only `safeUrl`.
 */
import type { Dispatcher } from 'undici';
import { request } from 'undici';

import { CxrecError, isAbortError } from '../errors.js';
import { safeUrl } from '../redact.js';
import { md5FromEtag } from './digests.js';

export interface MediaTransferResult {
  /** The object's full size, from Content-Range or Content-Length. */
  totalSize: number;
  /** md5 hex from the ETag, when the ETag is one. */
  etagMd5: string | undefined;
  /** Bytes handed to `onChunk` by this transfer. */
  bytes: number;
}

export interface MediaTransferOptions {
  url: URL;
  /** First byte wanted; 0 for the whole object. */
  offset: number;
  /**
   * The object's announced size. An answer whose `Content-Range` total or
   * `Content-Length` tells another size is not read (no byte reaches
   * `onChunk`; the result's `totalSize` says what the host claims), and no
   * byte past this size is ever handed on, whatever the host sends.
   */
  expectedSize: number;
  dispatcher: Dispatcher;
  signal?: AbortSignal | undefined;
  /** Receives the body in order; awaited, so a slow store slows the transfer (backpressure). */
  onChunk(chunk: Buffer): Promise<void>;
  /** For error messages. */
  context: Record<string, string>;
}

export async function transferMedia(options: MediaTransferOptions): Promise<MediaTransferResult> {
  const { url, offset, expectedSize, context } = options;
  const where = { ...context, url: safeUrl(url) };
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: 'GET',
      dispatcher: options.dispatcher,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      signal: options.signal,
    });
  } catch (err) {
    throw transportError(err, 'media request failed', where);
  }

  const status = res.statusCode;
  if (status !== 200 && status !== 206) {
    await res.body.dump().catch(() => undefined);
    throw statusError(status, where);
  }

  const contentLength = headerNumber(res.headers['content-length']);
  let skip = 0;
  let totalSize: number | undefined;
  if (status === 206) {
    const range = parseContentRange(res.headers['content-range']);
    if (!range || range.start !== offset) {
      await res.body.dump().catch(() => undefined);
      throw new CxrecError('invalid_response', 'media host answered a different range than asked', {
        context: { ...where, asked: offset, got: String(res.headers['content-range']) },
      });
    }
    totalSize = range.total;
  } else {
    // A 200 to a Range request sends the whole object again; drop what we already have.
    skip = offset;
    totalSize = contentLength;
  }
  if (totalSize === undefined || contentLength === undefined) {
    res.body.destroy();
    throw new CxrecError('invalid_response', 'media answer has no Content-Length', { context: where });
  }
  if (status === 206 && contentLength !== totalSize - offset) {
    res.body.destroy();
    throw new CxrecError('invalid_response', 'media Content-Length disagrees with its Content-Range', {
      context: { ...where, contentLength, contentRange: String(res.headers['content-range']) },
    });
  }
  if (totalSize !== expectedSize) {
    // Another object than announced (the Processing trap's short object, or
    // a host about to send more than it should): refused unread; the caller
    // compares `totalSize` with the announced size and decides.
    res.body.destroy();
    return { totalSize, etagMd5: undefined, bytes: 0 };
  }

  let received = 0;
  let handed = 0;
  try {
    for await (const raw of res.body) {
      let chunk = raw as Buffer;
      received += chunk.length;
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length);
        skip -= drop;
        chunk = chunk.subarray(drop);
        if (chunk.length === 0) continue;
      }
      if (offset + handed + chunk.length > expectedSize) {
        // More than announced (and than Content-Length said): stop reading here.
        res.body.destroy();
        throw new CxrecError('integrity', 'media host sent more bytes than the object has', {
          context: { ...where, announced: expectedSize },
        });
      }
      handed += chunk.length;
      await options.onChunk(chunk);
    }
  } catch (err) {
    if (err instanceof CxrecError) throw err;
    throw transportError(err, 'media transfer broke off', { ...where, received: offset + handed });
  }
  if (received < contentLength) {
    throw new CxrecError('media_truncated', 'media body ended before Content-Length', {
      context: { ...where, received, contentLength },
    });
  }
  return { totalSize, etagMd5: md5FromEtag(headerString(res.headers.etag)), bytes: handed };
}

export function statusError(status: number, where: Record<string, string>): CxrecError {
  const context = { ...where, status };
  if (status === 403)
    return new CxrecError('media_url_expired', 'media URL refused (expired or bad signature)', { context });
  if (status === 404) return new CxrecError('media_missing', 'media object not found', { context });
  if (status === 416)
    return new CxrecError('integrity', 'media host says the range is past the end', {
      context,
      retryable: false,
    });
  return new CxrecError('http_status', `media host answered ${status}`, {
    context,
    retryable: status >= 500 || status === 429,
  });
}

export function transportError(
  err: unknown,
  message: string,
  context: Record<string, string | number>,
): unknown {
  if (isAbortError(err)) return err;
  return new CxrecError('network', message, { cause: err, context });
}

export function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function headerNumber(value: string | string[] | undefined): number | undefined {
  const s = headerString(value);
  if (s === undefined || !/^\d+$/.test(s.trim())) return undefined;
  return Number(s);
}

export function parseContentRange(
  value: string | string[] | undefined,
): { start: number; end: number; total: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headerString(value)?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) };
}
