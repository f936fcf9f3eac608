/**
 * The CXone recording API as cxrec uses it: search (paged, restartable),
 * detail, download URL, and an access check for `cxrec doctor`. Every call
 * goes through one `Transport` (token, rate limit, retries), so callers
 * see either a validated answer or a `CxrecError`.
 */
import type { Dispatcher } from 'undici';

import { CxrecError } from '../errors.js';
import { rootLogger, type Logger } from '../log.js';
import { sleep, systemClock, type Clock } from './clock.js';
import { assertUrlAllowed, createHttpAgent, type HttpAgentOptions } from './http.js';
import type { RateLimiter } from './rate-limiter.js';
import {
  backoffDelayMs,
  resolveRetryPolicy,
  type ResolvedRetryPolicy,
  type RetryPolicyOptions,
} from './retry-policy.js';
import { ApiStats, type ApiStatsSnapshot } from './stats.js';
import { requiredScopes, TokenProvider } from './token-provider.js';
import { Transport } from './transport.js';
import {
  downloadUrlSchema,
  parseWire,
  recordingDetailSchema,
  searchResponseSchema,
  type Channel,
  type DownloadUrl,
  type Recording,
  type RecordingDetail,
  type RecordingStatus,
  type SearchFilter,
  type SearchRequestBody,
  type SortDirection,
} from './wire.js';

export interface CxoneClientOptions {
  /** The tenant's API base URL (CXONE_API_URL); https, or http on loopback only. */
  apiUrl: string;
  /** CXONE_CLIENT_ID. */
  clientId: string;
  /** CXONE_CLIENT_SECRET; never logged, never in a message. */
  clientSecret: string;
  /** The tenant's shared budget; every `/api/v2` call goes through it. */
  rateLimiter: RateLimiter;
  /**
   * Base of the jittered exponential backoff (CXREC_BACKOFF_SECONDS · 1000).
   * @default 2000
   */
  backoffBaseMs?: number;
  /** The rest of the retry policy; `backoffBaseMs` wins over `retry.baseMs`. @default see `RetryPolicyOptions` */
  retry?: RetryPolicyOptions;
  /** Timeouts of the agent the client creates when `dispatcher` is not given. @default see `HttpAgentOptions` */
  http?: HttpAgentOptions;
  /** An agent to share (e.g. with media downloads); the client then does not close it. @default a new `createHttpAgent(http)` */
  dispatcher?: Dispatcher;
  /** @default the root logger */
  logger?: Logger;
  /** Scopes requested and required. @default ['recording:read', 'recording:download'] */
  scopes?: readonly string[];
  /** 401 invalid_client answers in a row before the credentials count as wrong. @default 2 */
  credentialAttempts?: number;
  /**
   * Cursor restarts in a row that yield nothing new before a listing gives
   * up with `cursor_expired` (the platform drops cursors faster than one
   * page can be read). @default 5
   */
  maxRestartsWithoutProgress?: number;
  /** @default systemClock */
  clock?: Clock;
}

/** What to list. The window is `createdFrom ≤ createdDate < createdBefore`. */
export interface SearchQuery {
  /** Inclusive lower bound. @default none */
  createdFrom?: Date | string;
  /** Exclusive upper bound. @default none */
  createdBefore?: Date | string;
  /** Only these statuses. @default all */
  statuses?: readonly RecordingStatus[];
  /**
   * `asc` (oldest first) is the default because it is the natural order for
   * a watermark: a restart continues from the newest second seen, and a
   * caller that stops early has covered a contiguous prefix of its window.
   * @default 'asc'
   */
  sort?: SortDirection;
  /** 1..100. @default 100 */
  pageSize?: number;
}

export interface SearchPage {
  /** This page's recordings, none yielded before in this listing. May be empty. */
  recordings: Recording[];
  /** 1-based count of pages fetched in this listing (restarts included). */
  page: number;
  /** Items of this page dropped as already yielded. */
  duplicatesDropped: number;
  /** Whether this page is the first after a restart from the watermark. */
  restarted: boolean;
}

export interface AccessReport {
  grantedScopes: readonly string[];
  missingScopes: readonly string[];
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export class CxoneClient {
  /** Counts of API calls per endpoint and answer. */
  readonly apiStats = new ApiStats();
  readonly tokens: TokenProvider;
  private readonly transport: Transport;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly retry: ResolvedRetryPolicy;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly scopes: readonly string[];
  private readonly maxRestartsWithoutProgress: number;

  constructor(options: CxoneClientOptions) {
    const baseUrl = assertUrlAllowed(options.apiUrl, 'CXONE_API_URL');
    if (options.clientId === '' || options.clientSecret === '') {
      throw new CxrecError('config_invalid', 'CXONE_CLIENT_ID and CXONE_CLIENT_SECRET must both be set');
    }
    this.retry = resolveRetryPolicy({
      ...options.retry,
      ...(options.backoffBaseMs === undefined ? {} : { baseMs: options.backoffBaseMs }),
    });
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? rootLogger()).child({ component: 'cxone' });
    this.scopes = options.scopes ?? requiredScopes;
    this.maxRestartsWithoutProgress = options.maxRestartsWithoutProgress ?? 5;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher = options.dispatcher ?? createHttpAgent(options.http);
    this.transport = new Transport({
      baseUrl,
      dispatcher: this.dispatcher,
      limiter: options.rateLimiter,
      retry: this.retry,
      stats: this.apiStats,
      logger: this.logger,
      clock: this.clock,
    });
    this.tokens = new TokenProvider({
      transport: this.transport,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      scopes: this.scopes,
      retry: this.retry,
      logger: this.logger,
      clock: this.clock,
      ...(options.credentialAttempts === undefined ? {} : { credentialAttempts: options.credentialAttempts }),
    });
    this.transport.useTokens(this.tokens);
  }

  /**
   * Lists a window page by page. Never yields a recording twice: the
   * listing remembers every id it yielded (a few MB for 100 000 ids), so
   * duplicates from index shifts while paging and from restarts are
   * dropped.
   *
   * When the platform drops the cursor (400 invalid_page_token), the
   * listing restarts from its watermark, not from the start: with `asc`,
   * `createdDate ≥` the second of the newest item seen (`createdDate` has
   * one-second resolution and many recordings share a second, hence `≥`
   * that second and the id check); with `desc`, `createdDate <` the second
   * after the oldest seen.
   *
   * A recording indexed late with a `createdDate` behind the watermark is
   * not found by this listing; the contract's answer is a further complete
   * listing of the window (the pipeline's job).
   */
  async *search(
    query: SearchQuery = {},
    options: CallOptions = {},
  ): AsyncGenerator<SearchPage, void, undefined> {
    const { signal } = options;
    const sort = query.sort ?? 'asc';
    const pageSize = query.pageSize ?? 100;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) {
      throw new CxrecError('usage', 'search pageSize must be a whole number in 1..100', {
        context: { pageSize },
      });
    }
    const from = query.createdFrom === undefined ? undefined : secondsIso(query.createdFrom, 'createdFrom');
    const before =
      query.createdBefore === undefined ? undefined : secondsIso(query.createdBefore, 'createdBefore');
    const seen = new Set<string>();
    /** Newest (asc) or oldest (desc) createdDate yielded, in epoch ms. */
    let watermark: number | undefined;
    let pageToken: string | undefined;
    let page = 0;
    let restarted = false;
    let restartsWithoutProgress = 0;
    let yieldedSinceRestart = 0;

    for (;;) {
      const body: SearchRequestBody =
        pageToken === undefined
          ? {
              filters: this.filters(query.statuses, sort, from, before, watermark),
              sort: [{ field: 'createdDate', direction: sort }],
              pageSize,
            }
          : { pageToken };
      let response;
      try {
        const answer = await this.transport.call(
          {
            endpoint: 'search',
            method: 'GET',
            path: '/api/v2/recording/search',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
            auth: true,
            context: { page: page + 1 },
            mapError: (status, errorBody) =>
              status === 400 && errorBody.error === 'invalid_page_token'
                ? new CxrecError('cursor_expired', 'the search cursor expired or was invalidated', {
                    context: { page: page + 1 },
                  })
                : undefined,
          },
          signal,
        );
        response = parseWire(searchResponseSchema, answer.body, 'search');
      } catch (err) {
        if (!(err instanceof CxrecError && err.code === 'cursor_expired') || pageToken === undefined)
          throw err;
        restartsWithoutProgress = yieldedSinceRestart === 0 ? restartsWithoutProgress + 1 : 1;
        if (restartsWithoutProgress > this.maxRestartsWithoutProgress) {
          throw new CxrecError(
            'cursor_expired',
            'search cursors keep expiring before the listing can progress',
            {
              cause: err,
              context: { restarts: restartsWithoutProgress },
            },
          );
        }
        this.apiStats.searchRestarts++;
        this.logger.info(
          {
            page: page + 1,
            watermark: watermark === undefined ? undefined : new Date(watermark).toISOString(),
          },
          'search cursor expired; continuing from the watermark',
        );
        if (restartsWithoutProgress > 1) {
          // The platform drops cursors faster than we read: give it a moment.
          await sleep(backoffDelayMs(restartsWithoutProgress - 1, this.retry), signal, this.clock);
        }
        pageToken = undefined;
        restarted = true;
        yieldedSinceRestart = 0;
        continue;
      }
      page++;
      const fresh: Recording[] = [];
      for (const recording of response.recordings) {
        if (seen.has(recording.recordingId)) continue;
        seen.add(recording.recordingId);
        fresh.push(recording);
        const created = Date.parse(recording.createdDate);
        if (watermark === undefined || (sort === 'asc' ? created > watermark : created < watermark)) {
          watermark = created;
        }
      }
      const duplicatesDropped = response.recordings.length - fresh.length;
      this.apiStats.duplicatesDropped += duplicatesDropped;
      yieldedSinceRestart += fresh.length;
      yield { recordings: fresh, page, duplicatesDropped, restarted };
      restarted = false;
      if (response.nextPageToken === null || response.nextPageToken === undefined) return;
      pageToken = response.nextPageToken;
    }
  }

  /** `GET /api/v2/recording/{id}`; an unknown id is `not_found`. */
  async detail(recordingId: string, options: CallOptions = {}): Promise<RecordingDetail> {
    const answer = await this.transport.call(
      {
        endpoint: 'detail',
        method: 'GET',
        path: `/api/v2/recording/${encodeURIComponent(recordingId)}`,
        auth: true,
        context: { recordingId },
        mapError: (status) => (status === 404 ? notFound(recordingId) : undefined),
      },
      options.signal,
    );
    return parseWire(recordingDetailSchema, answer.body, 'detail');
  }

  /**
   * A presigned URL for one channel. The URL is a secret of sorts: never
   * log it or put it in a message (use `safeUrl`). CXone answers 200 for a
   * recording still `Processing` too (the object behind it is missing or
   * short): only ask for `Available` ones.
   */
  async downloadUrl(recordingId: string, channel: Channel, options: CallOptions = {}): Promise<DownloadUrl> {
    const answer = await this.transport.call(
      {
        endpoint: 'download_url',
        method: 'GET',
        path: `/api/v2/recording/${encodeURIComponent(recordingId)}/download?channel=${encodeURIComponent(channel)}`,
        auth: true,
        context: { recordingId, channel },
        mapError: (status) => (status === 404 ? notFound(recordingId) : undefined),
      },
      options.signal,
    );
    const parsed = parseWire(downloadUrlSchema, answer.body, 'download_url');
    if (parsed.channel !== channel) {
      throw new CxrecError('invalid_response', `download_url answered for channel ${parsed.channel}`, {
        context: { recordingId, channel },
      });
    }
    return parsed;
  }

  /**
   * For `cxrec doctor`: gets a token (so wrong credentials or an
   * unreachable host throw `auth_failed` / `unreachable` as usual) and
   * reports which required scopes the API client was granted.
   */
  async checkAccess(options: CallOptions = {}): Promise<AccessReport> {
    const grant = await this.tokens.grant(options.signal);
    return {
      grantedScopes: grant.grantedScopes,
      missingScopes: this.scopes.filter((s) => !grant.grantedScopes.includes(s)),
    };
  }

  /** A copy of the per-endpoint call counts. */
  stats(): ApiStatsSnapshot {
    return this.apiStats.snapshot();
  }

  /** Closes the HTTP agent if the client created it. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private filters(
    statuses: readonly RecordingStatus[] | undefined,
    sort: SortDirection,
    from: string | undefined,
    before: string | undefined,
    watermark: number | undefined,
  ): SearchFilter[] {
    const filters: SearchFilter[] = [];
    if (statuses !== undefined && statuses.length === 1) {
      filters.push({ field: 'status', operator: 'eq', value: statuses[0] as RecordingStatus });
    } else if (statuses !== undefined && statuses.length > 1) {
      filters.push({ field: 'status', operator: 'in', value: statuses });
    }
    let lower = from;
    let upper = before;
    if (watermark !== undefined) {
      const second = Math.floor(watermark / 1000) * 1000;
      if (sort === 'asc') {
        const candidate = toSecondsIso(second);
        if (lower === undefined || candidate > lower) lower = candidate;
      } else {
        const candidate = toSecondsIso(second + 1000);
        if (upper === undefined || candidate < upper) upper = candidate;
      }
    }
    if (lower !== undefined) filters.push({ field: 'createdDate', operator: 'gte', value: lower });
    if (upper !== undefined) filters.push({ field: 'createdDate', operator: 'lt', value: upper });
    return filters;
  }
}

function notFound(recordingId: string): CxrecError {
  return new CxrecError('not_found', 'CXone has no such recording', { context: { recordingId } });
}

/** `2024-01-15T10:31:07Z`: the platform's one-second resolution, always UTC (so strings compare as instants). */
function toSecondsIso(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function secondsIso(value: Date | string, name: string): string {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) {
    throw new CxrecError('usage', `search ${name} is not a date`, { context: { [name]: String(value) } });
  }
  // createdDate values are whole seconds, so rounding either bound up to a
  // whole second keeps exactly the recordings of the window.
  return toSecondsIso(Math.ceil(ms / 1000) * 1000);
}
