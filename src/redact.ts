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
  /\b(client_secret|access_token|refresh_token|id_token|password|sslpassword|AccountKey|SharedAccessSignature)=([^&;\s"']+)/gi;
/** A JWT on its own (the platform's access, refresh and id tokens): header and payload are base64url JSON. */
const jwtPattern = /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/**
 * `scheme://user:password@`: the password of a URL's user info, up to the
 * last `@` of the line, so a password holding `/`, `@`, `#` or a space (pg
 * encodes spaces itself and accepts them) is hidden whole, and a user name
 * holding an `@` does not end the match early (erring on hiding too much,
 * never too little).
 */
const userInfoPasswordPattern = /\b([a-z][a-z0-9+.-]*:\/\/[^:/\s]*):[^\n\r]*@/gi;
/** Query parameters the pg driver (pg-connection-string, like libpq) takes as a password. */
const passwordQueryParams = new Set(['password', 'sslpassword']);
/** A query parameter's name: pg decodes it (`pass%77ord` is `password`), so the check does too. */
const queryNamePattern = /[?&]([^=&#\s?]+)=/g;

function isPasswordParam(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    // Not valid percent-encoding: pg would not decode it either; compare it as written.
  }
  return passwordQueryParams.has(decoded.toLowerCase());
}

/**
 * Hides the value of every `password`/`sslpassword` query parameter, in any
 * spelling pg honours, up to the next `&`, `#` or line end (a value may hold
 * a space: pg encodes it).
 */
function hideQueryPasswords(text: string): string {
  let out = '';
  let last = 0;
  queryNamePattern.lastIndex = 0;
  for (let m = queryNamePattern.exec(text); m !== null; m = queryNamePattern.exec(text)) {
    if (m[1] === undefined || !isPasswordParam(m[1])) continue;
    const start = m.index + m[0].length;
    let end = start;
    while (end < text.length && !'&#\n\r'.includes(text.charAt(end))) end += 1;
    out += text.slice(last, start) + REDACTED;
    last = end;
    queryNamePattern.lastIndex = end;
  }
  return out + text.slice(last);
}

/** Replaces presigned-URL signatures, bearer tokens, JWTs, URL passwords and `client_secret=` values in free text. */
export function scrubText(text: string): string {
  return redactUrlPassword(
    text
      .replace(queryPattern, `$1${REDACTED}`)
      .replace(bearerPattern, `$1 ${REDACTED}`)
      .replace(secretAssignmentPattern, `$1=${REDACTED}`)
      .replace(jwtPattern, REDACTED),
  );
}

/**
 * The one routine that hides the passwords of URLs, in settings as in free
 * text (`scrubText` applies it), the rest kept so the operator sees which
 * server and database is meant:
 * `postgres://user:secret@host/db?sslpassword=x` → `postgres://user@host/db?sslpassword=[REDACTED]`
 * (the user info loses its password entirely, as `URL` would leave it).
 * Every form pg honours: user info (also with `@`, `/`, spaces or
 * percent-encoding in it), `?password=` and `?sslpassword=`, also with a
 * percent-encoded name. Works on text that does not parse as a URL too (it
 * may be the very setting being rejected).
 */
export function redactUrlPassword(value: string): string {
  return hideQueryPasswords(value.replace(userInfoPasswordPattern, '$1@'));
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
