/**
 * What a media link serves, asked of the media host itself: the platform's
 * playback API announces neither the size nor the type of the object
 * (cxone-platform-api.md section 4), and the object key's extension and
 * the size checks need both before the first byte is staged. One GET of
 * the first byte (`Range: bytes=0-0`) tells both through `Content-Range`
 * and `Content-Type`; it costs the media host one request and the tenant's
 * budgets nothing. A host that ignores the Range answers 200 with the whole
 * object: its `Content-Length` is the size, and the body is not read.
 */
import type { Dispatcher } from 'undici';
import { request } from 'undici';

import { CxrecError } from '../errors.js';
import { safeUrl } from '../redact.js';
import {
  headerNumber,
  headerString,
  parseContentRange,
  statusError,
  transportError,
} from './media-transfer.js';

export interface MediaProbe {
  /** The object's size: the `Content-Range` total (206) or `Content-Length` (200). */
  totalSize: number;
  contentType: string;
}

export async function probeMedia(options: {
  url: URL;
  dispatcher: Dispatcher;
  signal?: AbortSignal | undefined;
  /** For error messages. */
  context: Record<string, string>;
}): Promise<MediaProbe> {
  const where = { ...options.context, url: safeUrl(options.url) };
  let res: Dispatcher.ResponseData;
  try {
    res = await request(options.url, {
      method: 'GET',
      dispatcher: options.dispatcher,
      headers: { range: 'bytes=0-0' },
      signal: options.signal,
    });
  } catch (err) {
    throw transportError(err, 'media request failed', where);
  }
  // The one byte (or, from a host that ignores Range, the whole body) is not wanted.
  await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
  const status = res.statusCode;
  // An object shorter than the range cannot be: 416 means the host has no bytes at all.
  if (status === 416) return { totalSize: 0, contentType: contentTypeOf(res, where) };
  if (status !== 200 && status !== 206) throw statusError(status, where);
  const totalSize =
    status === 206
      ? parseContentRange(res.headers['content-range'])?.total
      : headerNumber(res.headers['content-length']);
  if (totalSize === undefined) {
    throw new CxrecError('invalid_response', 'media answer tells no size (Content-Range or Content-Length)', {
      context: where,
    });
  }
  return { totalSize, contentType: contentTypeOf(res, where) };
}

function contentTypeOf(res: Dispatcher.ResponseData, where: Record<string, string>): string {
  const type = headerString(res.headers['content-type']);
  if (type === undefined || type.trim() === '') {
    throw new CxrecError('invalid_response', 'media answer has no Content-Type', { context: where });
  }
  return type;
}
