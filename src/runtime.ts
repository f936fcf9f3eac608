/**
 * Builds what the commands run on, from the validated settings: the CXone
 * client of the tenant's dialect with its rate budgets, one HTTP agent
 * shared by API and media traffic, the ledger and the object store. Every
 * command that needs them goes through here, so they are opened and
 * closed the same way.
 */
import type { Agent } from 'undici';

import type { Config, Dialect } from './config.js';
import { requireCxone, requirePlatform } from './config.js';
import { CxoneClient } from './cxone/client.js';
import { createHttpAgent } from './cxone/http.js';
import { PlatformClient } from './cxone/platform/client.js';
import { apiBudgetName, type RateBudget, type RateLimiter } from './cxone/rate-limiter.js';
import type { ApiStats } from './cxone/stats.js';
import type { Logger } from './log.js';
import { cxoneRecordingApi } from './pipeline/cxone-recording-api.js';
import { platformSource } from './pipeline/platform-source.js';
import type { PipelineSettings } from './pipeline/pipeline-settings.js';
import { recordingApiSource } from './pipeline/recording-api-source.js';
import type { RecordingSource } from './pipeline/recording-source.js';
import type { Ledger, RecordingMeta } from './state/ledger.js';
import { openLedger, openRateLimiters } from './state/open-state.js';
import type { ObjectStore } from './storage/object-store.js';
import { openObjectStore } from './storage/open-store.js';

/** The platform dialect's media-playback budget (cxone-platform-api.md section 5). */
export const playbackBudgetName = 'playback';

export interface CxoneRuntime {
  dialect: Dialect;
  /** The recording-api client, in that dialect. */
  client: CxoneClient | undefined;
  /** The platform client, in that dialect. */
  platform: PlatformClient | undefined;
  /** Calls so far per endpoint and answer (`/metrics`, the export summary). */
  apiStats: ApiStats<string>;
  dispatcher: Agent;
  /**
   * Logs in and finds the tenant's API host where the dialect does so
   * (platform), so bad credentials stop a command before any work; the
   * settings to run with then (the media hosts allowed by default grow by
   * the discovered API host).
   */
  connect(settings: PipelineSettings, signal?: AbortSignal): Promise<PipelineSettings>;
  /** The dialect's `RecordingSource` over this client. */
  source(deps: {
    ledger: Ledger;
    settings: PipelineSettings;
    log: Logger;
    now: () => number;
    /** Which listed recordings enter the ledger (`export`'s selection); all when absent. */
    admit?: ((meta: RecordingMeta) => boolean) | undefined;
  }): RecordingSource;
  close(): Promise<void>;
}

export interface OpenCxoneOptions {
  /** Wraps each of the tenant's rate budgets, e.g. to measure waits. */
  wrapLimiter?: (limiter: RateLimiter) => RateLimiter;
  /**
   * A limiter of this process alone, touching no ledger: for `doctor`, whose
   * couple of calls must not create or migrate the ledger it is checking.
   */
  ownLimiter?: boolean;
}

/**
 * The tenant's rate budgets: every API request counts against
 * CXREC_RATE_LIMIT per minute; the platform's media playback has its own.
 */
export function rateBudgets(config: Config): RateBudget[] {
  const api = { name: apiBudgetName, limit: config.rateLimitPerMinute, windowMs: 60_000 };
  if (config.dialect === 'recording-api') return [api];
  return [
    api,
    { name: playbackBudgetName, limit: config.playbackLimit, windowMs: config.playbackWindowSeconds * 1000 },
  ];
}

export async function openCxone(
  config: Config,
  log: Logger,
  options: OpenCxoneOptions = {},
): Promise<CxoneRuntime> {
  // Settings first: a missing one is exit 2 before anything is opened.
  const recordingApi = config.dialect === 'recording-api' ? requireCxone(config) : undefined;
  const platform = config.dialect === 'platform' ? requirePlatform(config) : undefined;
  // Processes sharing a PostgreSQL ledger share the tenant's budgets through
  // it too, under a key naming the tenant: the API host, or for the
  // platform (whose API host is discovered) the issuer and the access key.
  const tenantKey = recordingApi
    ? new URL(recordingApi.apiUrl).host
    : `${new URL(platform?.apiUrl ?? config.authUrl).host}#${platform?.accessKeyId ?? ''}`;
  const budgets = await openRateLimiters(
    options.ownLimiter ? { kind: 'memory' } : config.stateTarget,
    rateBudgets(config),
    { tenantKey, logger: log },
  );
  const limiter = (name: string): RateLimiter => {
    const found = budgets.limiters[name];
    if (!found) throw new Error(`no rate budget named ${name}`);
    return options.wrapLimiter ? options.wrapLimiter(found) : found;
  };
  const dispatcher = createHttpAgent();
  const closeShared = async (): Promise<void> => {
    await dispatcher.close();
    await budgets.close();
  };

  if (platform) {
    const client = new PlatformClient({
      ...platform,
      apiLimiter: limiter(apiBudgetName),
      playbackLimiter: limiter(playbackBudgetName),
      backoffBaseMs: config.backoffSeconds * 1000,
      dispatcher,
      logger: log,
    });
    return {
      dialect: 'platform',
      client: undefined,
      platform: client,
      apiStats: client.apiStats,
      dispatcher,
      async connect(settings, signal) {
        const { apiEndpoint } = await client.connect({ signal });
        if (!config.mediaHostsDefaulted) return settings;
        // NICE publishes no media host: by default allow the discovered API
        // host and the issuer's, besides *.amazonaws.com.
        const hosts = new Set([
          ...settings.mediaHosts,
          new URL(apiEndpoint).hostname,
          new URL(config.authUrl).hostname,
        ]);
        return { ...settings, mediaHosts: [...hosts] };
      },
      source: ({ ledger, settings, log: sourceLog, now, admit }) =>
        platformSource({ client, ledger, log: sourceLog, now, admit, ...settings }),
      async close() {
        await client.close();
        await closeShared();
      },
    };
  }

  const cxone = recordingApi ?? requireCxone(config);
  const client = new CxoneClient({
    apiUrl: cxone.apiUrl,
    clientId: cxone.clientId,
    clientSecret: cxone.clientSecret,
    rateLimiter: limiter(apiBudgetName),
    backoffBaseMs: config.backoffSeconds * 1000,
    dispatcher,
    logger: log,
  });
  const api = cxoneRecordingApi(client);
  return {
    dialect: 'recording-api',
    client,
    platform: undefined,
    apiStats: client.apiStats,
    dispatcher,
    // The token is fetched with the first call: nothing to do ahead of it.
    connect: (settings) => Promise.resolve(settings),
    source: ({ ledger, settings, log: sourceLog, now, admit }) =>
      recordingApiSource({ api, ledger, log: sourceLog, now, admit, ...settings }),
    async close() {
      await client.close();
      await closeShared();
    },
  };
}

export function openStore(config: Config): Promise<ObjectStore> {
  return openObjectStore(config.storageTarget, {
    s3Sse: config.s3Sse,
    s3KmsKeyId: config.s3KmsKeyId,
    s3ForcePathStyle: config.s3ForcePathStyle,
  });
}

export function openState(config: Config): Promise<Ledger> {
  return openLedger(config.stateTarget);
}
