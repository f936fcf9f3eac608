/**
 * The claims of the platform's access token. The issuer's tokens are JWTs
 * whose payload (the second dot-separated part, base64url JSON) carries
 * `tenantId`; cxrec reads it without checking the signature, because the
 * token came over TLS from the issuer cxrec itself named (contract §1).
 * Messages never quote the token.
 */
import { CxrecError } from '../../errors.js';

/** The decoded payload of `token`, or `invalid_response` when it is not a JWT with a JSON object payload. */
export function jwtPayload(token: string): Record<string, unknown> {
  const parts = token.split('.');
  const encoded = parts[1];
  if (parts.length !== 3 || encoded === undefined || !/^[A-Za-z0-9_-]+={0,2}$/.test(encoded)) {
    throw notAJwt();
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch (cause) {
    throw notAJwt(cause);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw notAJwt();
  return payload as Record<string, unknown>;
}

/** The `tenantId` claim of an access token, as a string. */
export function tenantIdOf(token: string): string {
  const tenantId = jwtPayload(token).tenantId;
  if ((typeof tenantId === 'string' && tenantId.trim() !== '') || typeof tenantId === 'number') {
    return String(tenantId).trim();
  }
  throw new CxrecError('invalid_response', 'the access token carries no tenantId claim', {
    context: { endpoint: 'token', field: 'tenantId' },
  });
}

/** The token's lifetime from its `exp` and `iat` claims, in seconds, when both are there. */
export function jwtLifetimeSeconds(token: string): number | undefined {
  const { exp, iat } = jwtPayload(token);
  return typeof exp === 'number' && typeof iat === 'number' && exp > iat ? exp - iat : undefined;
}

function notAJwt(cause?: unknown): CxrecError {
  return new CxrecError('invalid_response', 'the access token is not a JWT with a JSON payload', {
    ...(cause === undefined ? {} : { cause }),
    context: { endpoint: 'token', field: 'access_token' },
  });
}
