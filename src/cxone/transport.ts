/**
 * One CXone API call, start to finish: token, rate-limit permit, the HTTP
 * exchange, the answer classified into the error family, and the retry
 * loop around it. Endpoint methods (`client.ts`) and the token provider
 * only say what to send and how to read the answer.
 *
 * Order inside one attempt, and why:
 * 1. token first, then the permit: a caller never holds a slot of the
 *    budget while it waits for a token refresh, which itself needs a slot
 *    (otherwise `limit` waiting callers would deadlock the refresh);
 * 2. after the permit, a token that went stale meanwhile (another caller
 *    saw it refused) is not sent: the unused slot is handed back uncounted
 *    and the caller fetches the new token. A revoked token then costs one
 *    refused request, not one per waiting caller;
 * 3. the permit is released when the answer is fully read (see
 *    `rate-limiter.ts` for why completion time matters).
 */
import type { Dispatcher } from 'undici';
import { request } from 'undici';

import { CxrecError, isAbortError } from '../errors.js';
import type { Logger } from '../log.js';
import { noteRetry } from '../retry-tally.js';
import { abortedError, sleep, systemClock, type Clock } from './clock.js';
import type { RateLimiter } from './rate-limiter.js';
import {
  decideRetry,
  parseRetryAfterMs,
  retryAfterCapped,
  retryKind,
  type ResolvedRetryPolicy,
  type RetryKind,
} from './retry-policy.js';
import type { ApiStats, Endpoint } from './stats.js';
import { errorBodySchema, type ErrorBody } from './wire.js';

/** What the transport needs from the token provider. */
export interface AccessTokenSource {
  /** A valid access token (cached, or fetched once for all callers). */
  getToken(signal?: AbortSignal): Promise<string>;
  /** `token` was refused as expired or revoked: the next `getToken` fetches a new one (once). */
  invalidate(token: string): void;
  /** Whether `token` is no longer the one to use (refused meanwhile, or replaced). */
  isStale(token: string): boolean;
}

export interface CallSpec<E extends string = Endpoint> {
  endpoint: E;
  method: 'GET' | 'POST';
  /** Path and query, relative to the base URL (or an absolute URL); ids already encoded. */
  path: string;
  /** The base URL of this call, when not the transport's (another host of the tenant). @default `TransportOptions.baseUrl` */
  baseUrl?: URL;
  /** The budget this call spends, when not the transport's (a dialect with several budgets). @default `TransportOptions.limiter` */
  limiter?: RateLimiter;
  /**
   * How to pause the limiter after a 429 that carries no `Retry-After`
   * (the platform dialect never sends one): the pause after the n-th 429
   * this call met, and whether the limiter should also lower its pace.
   * @default a 1 s pause, pace unchanged
   */
  on429?: { pauseMs: (refusals: number) => number; lowerPace: boolean };
  headers?: Record<string, string>;
  body?: string;
  /** Sends `Authorization: Bearer …` from the token source. */
  auth: boolean;
  /** Context for error messages (e.g. the recording id); never a secret. */
  context?: Record<string, string | number | undefined>;
  /**
   * Maps an endpoint-specific error answer (404 not found, 400 cursor
   * expired, 401 invalid_client on the token endpoint) to its error; the
   * transport's generic mapping applies when this returns `undefined`.
   */
  mapError?: (status: number, body: ErrorBody, headers: ResponseHeaders) => CxrecError | undefined;
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

export interface Answer {
  status: number;
  /** The parsed JSON body, still to be validated by the caller; `undefined` for a 204. */
  body: unknown;
}

export interface TransportOptions<E extends string = Endpoint> {
  baseUrl: URL;
  dispatcher: Dispatcher;
  limiter: RateLimiter;
  retry: ResolvedRetryPolicy;
  stats: ApiStats<E>;
  logger: Logger;
  clock?: Clock;
}

/** The pause after a 429 without `Retry-After`: the smallest one CXone sends. */
const defaultPauseMs = 1000;

/** Largest error body we read; error answers are tiny, and this bounds a misbehaving proxy's HTML page. */
const maxErrorBodyBytes = 64 * 1024;

/**
 * Largest JSON answer read, in both dialects: a search or contacts page is
 * well under 1 MiB, so this only stops a broken or hostile host from
 * filling memory. A larger answer is refused (`invalid_response`) unread.
 */
export const maxJsonBodyBytes = 16 * 1024 * 1024;

export class Transport<E extends string = Endpoint> {
  private tokens: AccessTokenSource | undefined;
  private readonly clock: Clock;

  constructor(private readonly options: TransportOptions<E>) {
    this.clock = options.clock ?? systemClock;
  }

  /** Set once the token provider (which itself calls through this transport) exists. */
  useTokens(tokens: AccessTokenSource): void {
    this.tokens = tokens;
  }

  /** The call, retried per the policy; resolves with a 2xx answer or throws a `CxrecError`. */
  async call(spec: CallSpec<E>, signal?: AbortSignal): Promise<Answer> {
    const counts: Record<RetryKind, number> = { fault: 0, rate_limited: 0, token: 0 };
    let answeredOnce = false;
    for (;;) {
      if (signal?.aborted) throw abortedError(signal, `${spec.endpoint} call`);
      let outcome: { answer: Answer } | { error: unknown };
      try {
        outcome = { answer: await this.attempt(spec, signal, counts.rate_limited + 1) };
      } catch (error) {
        outcome = { error };
      }
      if ('answer' in outcome) return outcome.answer;
      const { error } = outcome;
      // The token provider already retried its own call; retrying around
      // it again would multiply the attempts.
      if (error instanceof Final) throw error.cause;
      if (isAbortError(error)) throw signal ? abortedError(signal, `${spec.endpoint} call`) : error;
      if (!(error instanceof NoAnswer)) answeredOnce = true;
      const cause = error instanceof NoAnswer ? error.cause : error;
      // Replaying the same cursor cannot succeed; the listing restarts itself.
      const decision =
        cause instanceof CxrecError && cause.code === 'cursor_expired'
          ? ({ retry: false } as const)
          : decideRetry(cause, bump(counts, cause), this.options.retry);
      if (!decision.retry) throw this.finalError(spec, cause, answeredOnce, counts);
      // Absorbed by the retry: counted, and visible only at debug.
      noteRetry('api');
      this.options.logger.debug(
        {
          endpoint: spec.endpoint,
          ...spec.context,
          kind: decision.kind,
          attempt: counts[decision.kind],
          delayMs: decision.delayMs,
          err: cause,
        },
        `${spec.endpoint} call failed, retrying`,
      );
      await sleep(decision.delayMs, signal, this.clock);
    }
  }

  /** @param refusal which 429 of this call an answer 429 would be (1 for the first). */
  private async attempt(
    spec: CallSpec<E>,
    signal: AbortSignal | undefined,
    refusal: number,
  ): Promise<Answer> {
    const limiter = spec.limiter ?? this.options.limiter;
    let token: string | undefined;
    let permit;
    for (;;) {
      if (spec.auth) {
        if (!this.tokens) throw new Error('Transport.useTokens() was not called');
        try {
          token = await this.tokens.getToken(signal);
        } catch (err) {
          throw new Final(err);
        }
      }
      permit = await limiter.acquire({ signal });
      if (token === undefined || !this.tokens?.isStale(token)) break;
      await permit.release({ sent: false });
    }
    const headers: Record<string, string> = { accept: 'application/json', ...spec.headers };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const url = new URL(spec.path, spec.baseUrl ?? this.options.baseUrl);
    const started = this.clock.now();
    let status: number;
    let responseHeaders: ResponseHeaders;
    let text: string;
    let tooLarge = false;
    try {
      const response = await request(url, {
        method: spec.method,
        headers,
        body: spec.body ?? null,
        dispatcher: this.options.dispatcher,
        signal: signal ?? null,
      });
      status = response.statusCode;
      responseHeaders = response.headers;
      const success = status >= 200 && status < 300;
      const read = await readCapped(
        response.body,
        success ? maxJsonBodyBytes : maxErrorBodyBytes,
        headerNumberOf(response.headers['content-length']),
      );
      text = read.text;
      // An error answer is only ever described, so its first bytes do; a result must be whole.
      tooLarge = success && read.over;
    } catch (error) {
      await permit.release();
      if (isAbortError(error)) throw error;
      this.options.stats.record(spec.endpoint, 'network');
      throw new NoAnswer(error);
    }
    if (status === 429) {
      // Every caller of the tenant waits, not just this one: the next
      // request of anyone would be refused too, and a refused request in a
      // burst can prolong it. Paused before the permit goes back, so the
      // limiter knows this request did not succeed (see its slow start).
      const retryAfterMs = parseRetryAfterMs(responseHeaders['retry-after']);
      if (retryAfterCapped(responseHeaders['retry-after'])) {
        this.options.logger.warn(
          { endpoint: spec.endpoint, cappedAtMs: retryAfterMs },
          'CXone asked to wait longer than 5 minutes (Retry-After); waiting 5 minutes',
        );
      }
      if (retryAfterMs === undefined && spec.on429) {
        await limiter.pauseFor(spec.on429.pauseMs(refusal), { lowerPace: spec.on429.lowerPace });
      } else {
        await limiter.pauseFor(retryAfterMs ?? defaultPauseMs);
      }
    }
    await permit.release();
    this.options.stats.record(spec.endpoint, status);
    this.options.logger.debug(
      { endpoint: spec.endpoint, ...spec.context, status, ms: Math.round(this.clock.now() - started) },
      'cxone call',
    );
    if (tooLarge) {
      throw new CxrecError(
        'invalid_response',
        `${spec.endpoint} answered with a body over ${maxJsonBodyBytes / 1024 / 1024} MiB, which cxrec does not read`,
        { context: { endpoint: spec.endpoint, status } },
      );
    }
    // 204 No Content: the platform's empty listing.
    if (status === 204) return { status, body: undefined };
    if (status >= 200 && status < 300) {
      return { status, body: parseJson(text, spec.endpoint) };
    }
    const errorBody = parseErrorBody(text);
    throw this.errorFor(spec, status, errorBody, responseHeaders, token, refusal);
  }

  private errorFor(
    spec: CallSpec<E>,
    status: number,
    body: ErrorBody,
    headers: ResponseHeaders,
    token: string | undefined,
    refusal: number,
  ): CxrecError {
    const retryAfterMs = parseRetryAfterMs(headers['retry-after']);
    const context = { endpoint: spec.endpoint, status, ...spec.context };
    if (status === 429) {
      const pauseMs = retryAfterMs ?? spec.on429?.pauseMs(refusal) ?? defaultPauseMs;
      return new CxrecError(
        'rate_limited',
        `CXone rate limit reached; pausing the tenant for ${pauseMs} ms`,
        {
          context,
          retryAfterMs: pauseMs,
        },
      );
    }
    const specific = spec.mapError?.(status, body, headers);
    if (specific) return specific;
    if (status === 401 && token !== undefined && body.error !== 'insufficient_scope') {
      this.tokens?.invalidate(token);
      return new CxrecError(
        'token_invalid',
        'CXone refused the access token (expired or revoked); renewing it',
        {
          context,
        },
      );
    }
    if (status === 403 && body.error === 'insufficient_scope') {
      const scope = body.required ?? 'a required scope';
      return new CxrecError('scope_missing', missingScopeMessage([scope]), {
        context: { ...context, scope },
      });
    }
    const description = errorDescription(body, headers);
    return new CxrecError(
      'http_status',
      `${spec.endpoint} answered ${status}${body.error === undefined ? '' : ` ${body.error}`}` +
        (description === undefined ? '' : `: ${description}`),
      {
        context,
        retryable: status >= 500,
        ...(retryAfterMs === undefined || status < 500 ? {} : { retryAfterMs }),
      },
    );
  }

  private finalError(
    spec: CallSpec<E>,
    cause: unknown,
    answeredOnce: boolean,
    counts: Record<RetryKind, number>,
  ): unknown {
    if (!answeredOnce && counts.fault > 0) {
      // Not one HTTP answer in all attempts: the host is down, refused,
      // misnamed or blackholed. That is exit 3, not a per-recording failure.
      return new CxrecError(
        'unreachable',
        `cannot reach CXone after ${counts.fault} attempt${counts.fault === 1 ? '' : 's'}`,
        {
          cause,
          context: {
            endpoint: spec.endpoint,
            host: new URL(spec.path, spec.baseUrl ?? this.options.baseUrl).host,
          },
        },
      );
    }
    return cause;
  }
}

/** The message for a scope the API client lacks: what is missing and where to bind it. */
export function missingScopeMessage(scopes: readonly string[], clientId?: string): string {
  const who = clientId === undefined ? 'the CXone API client' : `the CXone API client ${clientId}`;
  return (
    `${who} lacks the scope ${scopes.join(' and ')}: bind it to the API client itself, not to a user ` +
    '(Admin > Security > OAuth > API Clients > Scopes); scopes bound to a user are ignored by the client-credentials grant'
  );
}

/**
 * The text an error answer gives for itself: the body's description
 * (OAuth spells it `error_description`, CXone's issuer also
 * `errorDescription`, the platform APIs `message`), else the classic APIs'
 * `icStatusDescription` header (their 400s may have an empty body).
 */
export function errorDescription(body: ErrorBody, headers: ResponseHeaders): string | undefined {
  const header = headers['icstatusdescription'];
  const fromHeader = Array.isArray(header) ? header[0] : header;
  const text = body.error_description ?? body.errorDescription ?? body.message ?? fromHeader;
  const trimmed = text?.trim().slice(0, 300);
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/** An error that ends the call as it is, without a retry. */
class Final extends Error {
  constructor(override readonly cause: unknown) {
    super('final', { cause });
  }
}

/** A transport fault (no HTTP answer); `cause` is the undici/Node error. */
class NoAnswer extends Error {
  constructor(override readonly cause: unknown) {
    super('no answer', { cause });
  }
}

function bump(counts: Record<RetryKind, number>, err: unknown): Record<RetryKind, number> {
  counts[retryKind(err) ?? 'fault']++;
  return counts;
}

function parseJson(text: string, endpoint: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new CxrecError('invalid_response', `${endpoint} answered with a body that is not JSON`, {
      cause,
      context: { endpoint },
    });
  }
}

function parseErrorBody(text: string): ErrorBody {
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/**
 * At most `cap` bytes of a body as text; `over` when the body (or its
 * `Content-Length`, then left unread) is larger. Reading stops at the cap.
 */
async function readCapped(
  body: AsyncIterable<Buffer> & { destroy?: () => unknown },
  cap: number,
  contentLength: number | undefined,
): Promise<{ text: string; over: boolean }> {
  if (contentLength !== undefined && contentLength > cap) {
    body.destroy?.();
    return { text: '', over: true };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > cap) {
      over = true;
      break;
    }
  }
  return { text: Buffer.concat(chunks).subarray(0, cap).toString('utf8'), over };
}

function headerNumberOf(value: string | string[] | undefined): number | undefined {
  const s = Array.isArray(value) ? value[0] : value;
  return s !== undefined && /^\s*\d+\s*$/.test(s) ? Number(s) : undefined;
}
