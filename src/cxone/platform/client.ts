/**
 * The CXone platform APIs as cxrec uses them (`cxone-platform-api.md`):
 * access-key login and tenant discovery, completed contacts (the Reporting
 * API) and media playback. Every call goes through the shared `Transport`
 * (token, budget, retries), on one of two budgets: media playback, and
 * everything else. Callers see a validated, normalised answer or a
 * `CxrecError`.
 */
import type { Dispatcher } from 'undici';

import { CxrecError } from '../../errors.js';
import { rootLogger, type Logger } from '../../log.js';
import { safeUrl } from '../../redact.js';
import { systemClock, type Clock } from '../clock.js';
import { assertUrlAllowed, createHttpAgent, type HttpAgentOptions } from '../http.js';
import type { RateLimiter, RatePermit } from '../rate-limiter.js';
import { resolveRetryPolicy, type ResolvedRetryPolicy, type RetryPolicyOptions } from '../retry-policy.js';
import { SingleFlight } from '../single-flight.js';
import { ApiStats, type ApiStatsSnapshot } from '../stats.js';
import { Transport, type CallSpec } from '../transport.js';
import { parseWire } from '../wire.js';
import { AccessKeyLogin, issuerError, underBase } from './access-key-login.js';
import { budgetOf, platformEndpoints, type PlatformEndpoint } from './endpoints.js';
import { pauseAfterRefusalMs } from './pacing.js';
import { playbackPermissionMissing, reportingPermissionMissing } from './permissions.js';
import {
  completedContactsResponseSchema,
  cxoneConfigurationSchema,
  playbackResponseSchema,
  type CompletedContact,
  type PlaybackResponse,
} from './wire.js';

export interface PlatformClientOptions {
  /** CXONE_AUTH_URL, the issuer. @default 'https://cxone.niceincontact.com' */
  authUrl?: string;
  /** CXONE_ACCESS_KEY_ID. */
  accessKeyId: string;
  /** CXONE_ACCESS_KEY_SECRET; never logged, never in a message. */
  accessKeySecret: string;
  /** CXONE_CLIENT_ID of the registered application. */
  clientId: string;
  /** CXONE_CLIENT_SECRET; never logged, never in a message. */
  clientSecret: string;
  /** CXONE_API_URL: when set, tenant discovery is skipped. @default discovered */
  apiUrl?: string | undefined;
  /** CXONE_API_VERSION, the classic APIs' version segment. @default 'v30.0' */
  apiVersion?: string;
  /** The budget of every API call but media playback (CXREC_RATE_LIMIT). */
  apiLimiter: RateLimiter;
  /** The media-playback budget (CXREC_PLAYBACK_LIMIT per CXREC_PLAYBACK_WINDOW_SECONDS). */
  playbackLimiter: RateLimiter;
  /** Base of the backoff (CXREC_BACKOFF_SECONDS · 1000); wins over `retry.baseMs`. @default 2000 */
  backoffBaseMs?: number;
  /** @default see `RetryPolicyOptions` */
  retry?: RetryPolicyOptions;
  /** Timeouts of the agent created when `dispatcher` is not given. @default see `HttpAgentOptions` */
  http?: HttpAgentOptions;
  /** An agent to share (e.g. with media downloads); the client then does not close it. @default a new agent */
  dispatcher?: Dispatcher;
  /** @default the root logger */
  logger?: Logger;
  /** @default systemClock */
  clock?: Clock;
}

export const defaultAuthUrl = 'https://cxone.niceincontact.com';
export const defaultApiVersion = 'v30.0';
/** The largest page cxrec asks for: larger ones can time out (contract §3). */
export const maxContactsPageSize = 1000;

/** What to list. Dates are sent as ISO-8601 UTC with a literal `Z`. */
export interface CompletedContactsQuery {
  /** Contacts with `contactStartDate ≥` this. @default none */
  startDate?: Date | string;
  /** Contacts with `contactStartDate <` this. @default none */
  endDate?: Date | string;
  /** Contacts with `lastUpdateTime ≥` this (the `run` loop). @default none */
  updatedSince?: Date | string;
  /** @default 'contactStartDate' */
  orderBy?: 'contactStartDate' | 'lastUpdateTime';
  /** Page size, 1..1000. @default 1000 */
  top?: number;
  /** Offset of the first page. @default 0 */
  skip?: number;
  /** 4 = phone calls; the only media with audio. @default 4 */
  mediaTypeId?: number;
}

export interface CompletedContactsPage {
  /** This page's contacts (legs), none yielded before in this listing. */
  contacts: CompletedContact[];
  /** The platform's `lastPollTime` (ISO), the next `updatedSince` less an overlap. */
  lastPollTime: string | undefined;
  totalRecords: number | undefined;
  /** 1-based page number in this listing. */
  page: number;
  /** The `skip` this page was asked with, when cxrec knows it. */
  skip: number | undefined;
  /** Items of this page dropped as already yielded (offsets shifted while paging). */
  duplicatesDropped: number;
}

/** One voice recording of a call, as playback announces it. */
export interface PlaybackInteraction {
  /** The presigned media URL: a secret; never log it (use `safeUrl`). */
  url: string;
  startTime: string | undefined;
  endTime: string | undefined;
  /** Unknown before the media answers; the media host's `Content-Type` decides. */
  contentType?: string;
}

export type PlaybackResult =
  /** Voice interactions with a media URL, ordered by `startTime`; empty when playback lists none. */
  | { kind: 'ready'; interactions: PlaybackInteraction[] }
  /** 404: still processing, never recorded, or purged: the platform does not say which. */
  | { kind: 'not_found' };

export type PlaybackProbe = { granted: true } | { granted: false; reason: string };

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

/** Logins and the `.well-known` documents count against neither budget (contract §5). */
const unmetered: RateLimiter = {
  acquire: (): Promise<RatePermit> => Promise.resolve({ release: () => Promise.resolve() }),
  pauseFor: () => Promise.resolve(),
};

export class PlatformClient {
  /** Counts of calls per endpoint and answer; `budgetCalls()` sums them per budget. */
  readonly apiStats = new ApiStats<PlatformEndpoint>(platformEndpoints);
  readonly login: AccessKeyLogin;
  readonly apiVersion: string;
  private readonly authUrl: URL;
  private readonly apiUrlOverride: URL | undefined;
  private discovered: URL | undefined;
  private readonly discovery = new SingleFlight<URL>('CXone tenant discovery');
  private readonly transport: Transport<PlatformEndpoint>;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly retry: ResolvedRetryPolicy;
  private readonly logger: Logger;
  private readonly apiLimiter: RateLimiter;
  private readonly playbackLimiter: RateLimiter;

  constructor(options: PlatformClientOptions) {
    this.authUrl = assertUrlAllowed(options.authUrl ?? defaultAuthUrl, 'CXONE_AUTH_URL');
    this.apiUrlOverride =
      options.apiUrl === undefined || options.apiUrl === ''
        ? undefined
        : assertUrlAllowed(options.apiUrl, 'CXONE_API_URL');
    const unset = (
      [
        ['CXONE_ACCESS_KEY_ID', options.accessKeyId],
        ['CXONE_ACCESS_KEY_SECRET', options.accessKeySecret],
        ['CXONE_CLIENT_ID', options.clientId],
        ['CXONE_CLIENT_SECRET', options.clientSecret],
      ] as const
    )
      .filter(([, value]) => value === '')
      .map(([name]) => name);
    if (unset.length > 0) {
      throw new CxrecError('config_invalid', `${unset.join(', ')} must be set for the platform dialect`);
    }
    this.apiVersion = options.apiVersion ?? defaultApiVersion;
    if (!/^v\d+(\.\d+)?$/.test(this.apiVersion)) {
      throw new CxrecError('config_invalid', 'CXONE_API_VERSION must look like v30.0', {
        context: { apiVersion: this.apiVersion },
      });
    }
    this.retry = resolveRetryPolicy({
      ...options.retry,
      ...(options.backoffBaseMs === undefined ? {} : { baseMs: options.backoffBaseMs }),
    });
    const clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? rootLogger()).child({ component: 'cxone-platform' });
    this.apiLimiter = options.apiLimiter;
    this.playbackLimiter = options.playbackLimiter;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher = options.dispatcher ?? createHttpAgent(options.http);
    this.transport = new Transport<PlatformEndpoint>({
      baseUrl: this.authUrl,
      dispatcher: this.dispatcher,
      limiter: unmetered,
      retry: this.retry,
      stats: this.apiStats,
      logger: this.logger,
      clock,
    });
    this.login = new AccessKeyLogin({
      transport: this.transport,
      authUrl: this.authUrl,
      accessKeyId: options.accessKeyId,
      accessKeySecret: options.accessKeySecret,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      unmetered,
      logger: this.logger,
      clock,
    });
    this.transport.useTokens(this.login);
  }

  /** The tenant of the access key, once logged in. */
  get tenantId(): string | undefined {
    return this.login.tenantId;
  }

  /** The tenant's API host (`CXONE_API_URL`, or discovered), once known. */
  get apiEndpoint(): string | undefined {
    return (this.apiUrlOverride ?? this.discovered)?.href;
  }

  /**
   * Logs in and finds the tenant's API host: for `doctor`, and to fail at
   * start-up on wrong settings rather than at the first listing.
   */
  async connect(options: CallOptions = {}): Promise<{ tenantId: string; apiEndpoint: string }> {
    const session = await this.login.session(options.signal);
    const api = await this.api(options.signal);
    return { tenantId: session.tenantId, apiEndpoint: api.href };
  }

  /**
   * Lists completed contacts page by page, following `_links.next` (a
   * page may be short and still not the last). A contact already yielded
   * in this listing is dropped: offsets shift when contacts are indexed
   * late (§3), so a page boundary may repeat one; one it skips is found by
   * the caller's next complete listing.
   */
  async *completedContacts(
    query: CompletedContactsQuery = {},
    options: CallOptions = {},
  ): AsyncGenerator<CompletedContactsPage, void, undefined> {
    const { signal } = options;
    const top = query.top ?? maxContactsPageSize;
    if (!Number.isInteger(top) || top < 1 || top > maxContactsPageSize) {
      throw new CxrecError(
        'usage',
        `completed contacts page size must be a whole number in 1..${maxContactsPageSize}`,
        {
          context: { top },
        },
      );
    }
    let skip: number | undefined = query.skip ?? 0;
    if (!Number.isInteger(skip) || skip < 0) {
      throw new CxrecError('usage', 'completed contacts skip must be a whole number ≥ 0', {
        context: { skip },
      });
    }
    const api = await this.api(signal);
    const params = new URLSearchParams();
    if (query.startDate !== undefined) params.set('startDate', isoZ(query.startDate, 'startDate'));
    if (query.endDate !== undefined) params.set('endDate', isoZ(query.endDate, 'endDate'));
    if (query.updatedSince !== undefined)
      params.set('updatedSince', isoZ(query.updatedSince, 'updatedSince'));
    params.set('mediaTypeId', String(query.mediaTypeId ?? 4));
    params.set('orderBy', `${query.orderBy ?? 'contactStartDate'} asc`);
    params.set('top', String(top));
    params.set('skip', String(skip));
    const path = `inContactAPI/services/${this.apiVersion}/contacts/completed`;
    let url = underBase(api, `${path}?${params.toString()}`);
    const asked = new Set<string>();
    const seen = new Set<string>();
    for (let page = 1; ; page++) {
      asked.add(url.href);
      const answer = await this.apiCall(
        {
          endpoint: 'contacts_completed',
          method: 'GET',
          path: url.href,
          auth: true,
          context: { page, ...(skip === undefined ? {} : { skip }) },
          limiter: this.apiLimiter,
          mapError: (status) =>
            status === 403 ? reportingPermissionMissing({ endpoint: 'contacts_completed' }) : undefined,
        },
        signal,
      );
      // 204: nothing matches (also a skip past the end).
      if (answer.status === 204 || answer.body === undefined) return;
      const response = parseWire(completedContactsResponseSchema, answer.body, 'contacts_completed');
      const contacts = response.completedContacts.filter((c) => {
        if (seen.has(c.contactId)) return false;
        seen.add(c.contactId);
        return true;
      });
      const duplicatesDropped = response.completedContacts.length - contacts.length;
      this.apiStats.duplicatesDropped += duplicatesDropped;
      yield {
        contacts,
        lastPollTime: response.lastPollTime ?? undefined,
        totalRecords: response.totalRecords,
        page,
        skip,
        duplicatesDropped,
      };
      const next = this.nextPage(url, api, response, skip, top);
      if (next === undefined) return;
      if (asked.has(next.url.href)) {
        throw new CxrecError('invalid_response', 'contacts_completed links back to a page already read', {
          context: { endpoint: 'contacts_completed', page },
        });
      }
      url = next.url;
      skip = next.skip;
    }
  }

  /**
   * Media playback for one call, asked with its `masterContactId` (a
   * leg's own `contactId` gets 404 forever). Spends the playback budget.
   */
  async playback(masterContactId: string, options: CallOptions = {}): Promise<PlaybackResult> {
    const api = await this.api(options.signal);
    const params = new URLSearchParams({
      'acd-call-id': masterContactId,
      'media-type': 'voice-only',
      'exclude-waveforms': 'true',
      'exclude-qm-categories': 'true',
    });
    let answer;
    try {
      answer = await this.apiCall(
        {
          endpoint: 'playback',
          method: 'GET',
          path: underBase(api, `media-playback/v1/contacts?${params.toString()}`).href,
          auth: true,
          context: { masterContactId },
          limiter: this.playbackLimiter,
          mapError: (status) => {
            if (status === 403) return playbackPermissionMissing({ endpoint: 'playback' });
            if (status === 404) {
              return new CxrecError('not_found', 'media playback has no interaction for the call', {
                context: { masterContactId },
              });
            }
            return undefined;
          },
        },
        options.signal,
      );
    } catch (err) {
      if (err instanceof CxrecError && err.code === 'not_found') return { kind: 'not_found' };
      throw err;
    }
    if (answer.body === undefined) return { kind: 'not_found' };
    return {
      kind: 'ready',
      interactions: voiceInteractions(parseWire(playbackResponseSchema, answer.body, 'playback')),
    };
  }

  /**
   * For `doctor`: one playback call for an id no call has. The platform
   * checks the permission before it looks the id up, so 404 means the
   * permission is there and 403 that it is missing. Spends one playback
   * request.
   */
  async probePlayback(options: CallOptions = {}): Promise<PlaybackProbe> {
    try {
      await this.playback('0', options);
      return { granted: true };
    } catch (err) {
      if (err instanceof CxrecError && err.code === 'permission_missing') {
        return { granted: false, reason: err.summary };
      }
      throw err;
    }
  }

  /** API calls per budget, every attempt counted (what the tenant's budgets see, 429s included). */
  budgetCalls(): { api: number; playback: number } {
    const calls = { api: 0, playback: 0 };
    for (const endpoint of platformEndpoints) {
      const budget = budgetOf[endpoint];
      if (budget !== undefined) calls[budget] += this.apiStats.total(endpoint);
    }
    return calls;
  }

  /** A copy of the per-endpoint call counts. */
  stats(): ApiStatsSnapshot<PlatformEndpoint> {
    return this.apiStats.snapshot();
  }

  /** Closes the HTTP agent if the client created it. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** The tenant's API host: `CXONE_API_URL`, or discovered once per process. */
  private async api(signal: AbortSignal | undefined): Promise<URL> {
    if (this.apiUrlOverride) return this.apiUrlOverride;
    if (this.discovered) return this.discovered;
    return this.discovery.join((flightSignal) => this.discover(flightSignal), signal);
  }

  private async discover(signal: AbortSignal): Promise<URL> {
    const { tenantId } = await this.login.session(signal);
    const authUrl = this.authUrl;
    let answer;
    try {
      answer = await this.transport.call(
        {
          endpoint: 'cxone_configuration',
          method: 'GET',
          path: underBase(
            authUrl,
            `.well-known/cxone-configuration?${new URLSearchParams({ tenantId }).toString()}`,
          ).href,
          auth: false,
          limiter: unmetered,
          context: { tenantId },
          mapError: (status) =>
            status === 404
              ? new CxrecError(
                  'tenant_unknown',
                  `the issuer ${safeUrl(authUrl)} does not know the tenant of this access key: check CXONE_AUTH_URL ` +
                    '(government tenants use https://cxone-gov.niceincontact.com), or set CXONE_API_URL',
                  { context: { tenantId } },
                )
              : undefined,
        },
        signal,
      );
    } catch (err) {
      throw issuerError(err, authUrl);
    }
    const config = parseWire(cxoneConfigurationSchema, answer.body, 'cxone_configuration');
    const api = assertUrlAllowed(config.api_endpoint, 'the api_endpoint that CXONE_AUTH_URL announced');
    this.discovered = api;
    this.logger.info({ tenantId, apiEndpoint: api.href, area: config.area }, 'CXone tenant discovered');
    return api;
  }

  /** A call to the tenant's API host: 429s there carry no Retry-After, so the budget pauses and slows. */
  private apiCall(
    spec: CallSpec<PlatformEndpoint>,
    signal: AbortSignal | undefined,
  ): ReturnType<Transport<PlatformEndpoint>['call']> {
    return this.transport.call(
      { ...spec, on429: { pauseMs: (refusal) => pauseAfterRefusalMs(refusal, this.retry), lowerPace: true } },
      signal,
    );
  }

  /**
   * Where the next page is, or `undefined` after the last. `_links.next`
   * is followed as given when it points at the API host; a link to any
   * other origin is not followed (a token would go with it): its `skip`,
   * or one computed here, is asked of the API host instead.
   */
  private nextPage(
    current: URL,
    api: URL,
    response: {
      _links?: { next?: string | null | undefined } | null | undefined;
      completedContacts: unknown[];
      totalRecords?: number | undefined;
    },
    skip: number | undefined,
    top: number,
  ): { url: URL; skip: number | undefined } | undefined {
    const link = response._links?.next;
    // null: the last page.
    if (link === null) return undefined;
    let given: URL | undefined;
    if (typeof link === 'string' && link !== '' && URL.canParse(link, api.href)) {
      given = new URL(link, api);
      if (given.origin === api.origin) {
        const linkedSkip = Number(given.searchParams.get('skip') ?? NaN);
        return { url: given, skip: Number.isInteger(linkedSkip) ? linkedSkip : undefined };
      }
      this.logger.warn(
        { linkOrigin: given.origin },
        'contacts_completed linked to another host; paging on the API host',
      );
    }
    const rows = response.completedContacts.length;
    const base = skip ?? Number(current.searchParams.get('skip') ?? 0);
    const linkedSkip = Number(given?.searchParams.get('skip') ?? NaN);
    const nextSkip =
      Number.isInteger(linkedSkip) && linkedSkip > base ? linkedSkip : base + (rows > 0 ? rows : top);
    // No link at all: page on by offset while rows come and totalRecords says there are more.
    if (
      given === undefined &&
      (rows === 0 || (response.totalRecords !== undefined && nextSkip >= response.totalRecords))
    ) {
      return undefined;
    }
    const url = new URL(current);
    url.searchParams.set('skip', String(nextSkip));
    return { url, skip: nextSkip };
  }
}

/** The voice interactions with a media URL, earliest first. */
function voiceInteractions(response: PlaybackResponse): PlaybackInteraction[] {
  const found: PlaybackInteraction[] = [];
  for (const interaction of response.interactions) {
    const url = interaction.data?.fileToPlayUrl;
    if (typeof url !== 'string' || url === '' || !URL.canParse(url)) continue;
    if (interaction.mediaType != null && !/voice/i.test(interaction.mediaType)) continue;
    found.push({
      url,
      startTime: interaction.startTime ?? interaction.data?.startTime ?? undefined,
      endTime: interaction.endTime ?? interaction.data?.endTime ?? undefined,
    });
  }
  const at = (i: PlaybackInteraction): number => {
    const ms = i.startTime === undefined ? NaN : Date.parse(i.startTime);
    return Number.isNaN(ms) ? Infinity : ms;
  };
  // Stable: interactions without a time keep their listed order, after the timed ones.
  return found.sort((a, b) => at(a) - at(b) || 0);
}

/** An instant as the Reporting API wants it: ISO-8601 UTC with a literal `Z`. */
function isoZ(value: Date | string, name: string): string {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) {
    throw new CxrecError('usage', `completed contacts ${name} is not a date`, {
      context: { [name]: String(value) },
    });
  }
  return new Date(ms).toISOString();
}
