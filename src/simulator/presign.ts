/**
 * Presigned media URLs, S3-v2 style: `?AWSAccessKeyId=…&Expires=<epoch
 * seconds>&Signature=…`, the signature an HMAC over the path and `Expires`.
 * The media endpoint checks it on every request; a URL is refused once
 * `Expires` has passed, whatever the client believes about its own clock.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const accessKeyId = 'ASIASIMULATORKEY0000';

export type SignatureCheck =
  { ok: true; expiresMs: number } | { ok: false; reason: 'missing' | 'bad_signature' | 'expired' };

export class Presigner {
  private readonly secret = randomBytes(32);

  private signature(path: string, expires: string): string {
    return createHmac('sha256', this.secret).update(`GET\n${path}\n${expires}`).digest('base64url');
  }

  /** Path plus query for `path`, valid until `expiresMs` (rounded up to a whole second). */
  sign(path: string, expiresMs: number): string {
    const expires = String(Math.ceil(expiresMs / 1000));
    const query = new URLSearchParams({
      AWSAccessKeyId: accessKeyId,
      Expires: expires,
      Signature: this.signature(path, expires),
    });
    return `${path}?${query.toString()}`;
  }

  check(path: string, query: URLSearchParams, nowMs: number): SignatureCheck {
    const expires = query.get('Expires');
    const signature = query.get('Signature');
    if (expires === null || signature === null || query.get('AWSAccessKeyId') === null) {
      return { ok: false, reason: 'missing' };
    }
    const expected = Buffer.from(this.signature(path, expires));
    const given = Buffer.from(signature);
    if (
      query.get('AWSAccessKeyId') !== accessKeyId ||
      !/^\d+$/.test(expires) ||
      given.length !== expected.length ||
      !timingSafeEqual(given, expected)
    ) {
      return { ok: false, reason: 'bad_signature' };
    }
    const expiresMs = Number(expires) * 1000;
    return nowMs >= expiresMs ? { ok: false, reason: 'expired' } : { ok: true, expiresMs };
  }
}
