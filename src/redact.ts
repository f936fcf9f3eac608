/**
 * What must never reach a log line, an error message, the ledger or a
 * progress line: secrets, tokens and presigned-URL signatures. `log.ts`
 * applies these to every record; error messages and stored reasons go
 * through `scrubText` too.
 */

/** Object keys whose values are always replaced, wherever they appear. */
export const secretKeys = [
  'authorization',
  'access_token',
  'accessToken',
  'client_secret',
  'clientSecret',
  'CXONE_CLIENT_SECRET',
  'refresh_token',
  'refreshToken',
  'id_token',
  'idToken',
  'accessKeySecret',
  'CXONE_ACCESS_KEY_SECRET',
  'AWS_SECRET_ACCESS_KEY',
  'AZURE_STORAGE_CONNECTION_STRING',
  'password',
  'token',
];

/** Query parameters of presigned URLs (S3 v2 and v4, Azure SAS, our simulator). */
export const presignedQueryParams = [
  'Signature',
  'X-Amz-Signature',
  'X-Amz-Credential',
  'X-Amz-Security-Token',
  'AWSAccessKeyId',
  'sig',
];

export const REDACTED = '[REDACTED]';

const queryPattern = new RegExp(
  `([?&](?:${presignedQueryParams.map((p) => p.replace(/-/g, '\\-')).join('|')})=)[^&\\s"'<>]*`,
  'gi',
);
const bearerPattern = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g;
// `password=` is the access key secret in the platform dialect's login form.
const secretAssignmentPattern =
  /\b(client_secret|access_token|refresh_token|id_token|password|AccountKey|SharedAccessSignature)=([^&;\s"']+)/gi;
/** A JWT on its own (the platform's access, refresh and id tokens): header and payload are base64url JSON. */
const jwtPattern = /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/**
 * `scheme://user:password@`: the password of a URL's user info, up to the
 * last `@` of the word, so a password with a `/` or `@` in it is hidden
 * whole (erring on hiding too much, never too little).
 */
const userInfoPasswordPattern = /\b([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):\S*@/gi;
/** `?password=` / `&password=`: libpq (and so pg) also takes the password as a query parameter. */
const passwordParamPattern = /([?&]password=)[^&#\s]*/gi;

/** Replaces presigned-URL signatures, bearer tokens, JWTs, URL passwords and `client_secret=` values in free text. */
export function scrubText(text: string): string {
  return (
    text
      .replace(queryPattern, `$1${REDACTED}`)
      .replace(bearerPattern, `$1 ${REDACTED}`)
      .replace(secretAssignmentPattern, `$1=${REDACTED}`)
      .replace(jwtPattern, REDACTED)
      // `?password=` is covered by the `password=` assignment above.
      .replace(userInfoPasswordPattern, '$1@')
  );
}

/**
 * A connection URL fit for messages, the rest of it kept so the operator
 * sees which server and database is meant:
 * `postgres://user:secret@host/db?password=x` → `postgres://user@host/db?password=***`
 * (the user info loses its password entirely, as `URL` would leave it).
 * Works on text that does not parse as a URL too (it may be the very
 * setting being rejected); anything else is returned as it is.
 */
export function redactUrlPassword(value: string): string {
  return value.replace(userInfoPasswordPattern, '$1@').replace(passwordParamPattern, '$1***');
}

/** A URL fit for messages: scheme, host and path only, never the query. */
export function safeUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

const secretKeySet = new Set(secretKeys.map((k) => k.toLowerCase()));

/** Deep copy of `value` with secret keys replaced and every string scrubbed. */
export function scrubValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, depth + 1));
  if (value instanceof Error || Buffer.isBuffer(value) || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = secretKeySet.has(k.toLowerCase()) ? REDACTED : scrubValue(v, depth + 1);
  }
  return out;
}
