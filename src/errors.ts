/**
 * The one error family of cxrec. Every error we raise on purpose is a
 * `CxrecError` with a stable `code` (operators grep for it, the ledger
 * stores it), context fields that name what failed, and the original error
 * as `cause`. Messages never carry a token, a secret or a presigned URL:
 * build them from ids and from `safeUrl()`, never from a raw URL.
 */

import { scrubText } from './redact.js';

export const errorCodes = {
  /** A setting or command-line value is malformed. Exit 2. */
  config_invalid: { exit: 2, retryable: false },
  /** The command was used wrongly (bad flag, future `--until`). Exit 2. */
  usage: { exit: 2, retryable: false },
  /** The token endpoint refused the client id or secret. Exit 3. */
  auth_failed: { exit: 3, retryable: false },
  /** The API client lacks a scope (recording:read, recording:download). Exit 3. */
  scope_missing: { exit: 3, retryable: false },
  /** The platform dialect's API user lacks a role permission (Reporting, Play Any). Exit 3. */
  permission_missing: { exit: 3, retryable: false },
  /** The issuer knows no such tenant (an access key of another issuer, e.g. the government one). Exit 3. */
  tenant_unknown: { exit: 3, retryable: false },
  /** CXone could not be reached at all (DNS, refused, TLS) after retries. Exit 3. */
  unreachable: { exit: 3, retryable: true },
  /** A connection reset, timeout or other transport fault. */
  network: { exit: 1, retryable: true },
  /** An HTTP answer we did not expect; retryable when 5xx. */
  http_status: { exit: 1, retryable: false },
  /** The tenant's rate limit answered 429. */
  rate_limited: { exit: 1, retryable: true },
  /** A token was rejected as expired or revoked (renew and replay). */
  token_invalid: { exit: 1, retryable: true },
  /** An answer did not match the wire contract. */
  invalid_response: { exit: 1, retryable: false },
  /** A search cursor expired or was invalidated; restart from the watermark. */
  cursor_expired: { exit: 1, retryable: true },
  /** The API says the recording does not exist. */
  not_found: { exit: 1, retryable: false },
  /** The presigned URL was refused (expired or bad signature): get a new one. */
  media_url_expired: { exit: 1, retryable: true },
  /** The media host answered 404: purged, or the Processing trap. */
  media_missing: { exit: 1, retryable: false },
  /** The media body ended before its announced size. */
  media_truncated: { exit: 1, retryable: true },
  /** The channel was never captured or the media is empty. */
  media_unavailable: { exit: 1, retryable: false },
  /** A presigned URL pointed at a host that CXREC_MEDIA_HOSTS does not allow. */
  media_host_refused: { exit: 1, retryable: false },
  /** Bytes did not match the expected size or md5. */
  integrity: { exit: 1, retryable: true },
  /** The object store failed. */
  storage: { exit: 1, retryable: true },
  /** The ledger failed. */
  ledger: { exit: 1, retryable: false },
  /** The work was cancelled (shutdown, timeout of a caller). */
  aborted: { exit: 1, retryable: false },
} as const satisfies Record<string, { exit: number; retryable: boolean }>;

export type ErrorCode = keyof typeof errorCodes;

export type ErrorContext = Readonly<Record<string, string | number | boolean | undefined>>;

export interface CxrecErrorOptions {
  cause?: unknown;
  context?: ErrorContext;
  /** Overrides the code's default, e.g. an `http_status` error for a 503. */
  retryable?: boolean;
  /** Server-requested wait before a retry, in milliseconds (`Retry-After`). */
  retryAfterMs?: number;
}

export class CxrecError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** The message without its context fields: fit for a ledger reason or a metric label. */
  readonly summary: string;

  constructor(code: ErrorCode, message: string, options: CxrecErrorOptions = {}) {
    super(
      scrubText(withContext(message, options.context)),
      options.cause === undefined ? {} : { cause: options.cause },
    );
    this.summary = scrubText(message);
    this.name = 'CxrecError';
    this.code = code;
    this.context = options.context ?? {};
    this.retryable = options.retryable ?? errorCodes[code].retryable;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The process exit code this error ends a command with. */
  get exitCode(): number {
    return errorCodes[this.code].exit;
  }
}

function withContext(message: string, context: ErrorContext | undefined): string {
  if (!context) return message;
  const parts = Object.entries(context)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`);
  return parts.length === 0 ? message : `${message} [${parts.join(', ')}]`;
}

/** Transport-level error codes from Node and undici that are worth a retry. */
const transientSystemCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** The code of a Node/undici error, looking through `cause` chains. */
export function systemCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (typeof e === 'object' && 'code' in e && typeof e.code === 'string' && !(e instanceof CxrecError)) {
      return e.code;
    }
    e = typeof e === 'object' && 'cause' in e ? e.cause : undefined;
  }
  return undefined;
}

/**
 * Whether an attempt that failed with `err` may be tried again. Unknown
 * errors are not retried: a bug should stop the job with its reason, not
 * spin.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof CxrecError) return err.retryable;
  if (isAbortError(err)) return false;
  const code = systemCode(err);
  return code !== undefined && transientSystemCodes.has(code);
}

export function isAbortError(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    'name' in err &&
    (err.name === 'AbortError' || (err instanceof CxrecError && err.code === 'aborted'))
  );
}

/** A short, safe description of any thrown value, for ledgers and summaries. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof CxrecError) return { code: err.code, message: err.message };
  if (err instanceof Error) {
    return { code: systemCode(err) ?? err.name, message: scrubText(err.message) };
  }
  return { code: 'unknown', message: scrubText(String(err)) };
}

/**
 * Why a row ended `failed`, in words shared by every recording that failed
 * the same way (no ids, sizes, hosts or content types: `failureDetail`
 * has those), so `status` and the metrics group them into few reasons.
 * Error messages are written without such values; `boundedReason` masks
 * any that slip into one (and into an error that is not ours).
 */
export function failureReason(err: unknown): string {
  return boundedReason(err instanceof CxrecError ? err.summary : describeError(err).message);
}

/** The specifics behind `failureReason`: the whole scrubbed message, with its context fields. */
export function failureDetail(err: unknown): string {
  return describeError(err).message;
}

/**
 * Masks what varies from row to row in a reason text: quoted strings,
 * URLs, host names, hex digests and numbers of four digits or more (HTTP
 * statuses and attempt counts stay), so reasons form a small set.
 */
export function boundedReason(text: string): string {
  return text
    .replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, '"…"')
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<url>')
    .replace(/\b(?=[a-z0-9-]*[a-z])[a-z0-9-]+(?:\.[a-z0-9-]+)+\b/gi, '<host>')
    .replace(/\b[0-9a-f]{8,}\b/gi, '<hex>')
    .replace(/\d{4,}|\d+\.\d+/g, 'N')
    .slice(0, 200);
}
