/**
 * Builds what the commands run on, from the validated settings: the CXone
 * client with the tenant's rate limiter, one HTTP agent shared by API and
 * media traffic, the ledger and the object store. Every command that needs
 * them goes through here, so they are opened and closed the same way.
 */
import type { Agent } from 'undici';

import type { Config } from './config.js';
import { requireCxone } from './config.js';
import { CxoneClient } from './cxone/client.js';
import { createHttpAgent } from './cxone/http.js';
import { apiBudgetName, type RateBudget, type RateLimiter } from './cxone/rate-limiter.js';
import type { Logger } from './log.js';
import { cxoneRecordingApi } from './pipeline/cxone-recording-api.js';
import type { RecordingApi } from './pipeline/recording-api.js';
import type { Ledger } from './state/ledger.js';
import { openLedger, openRateLimiters } from './state/open-state.js';
import type { ObjectStore } from './storage/object-store.js';
import { openObjectStore } from './storage/open-store.js';

export interface CxoneRuntime {
  client: CxoneClient;
  api: RecordingApi;
  dispatcher: Agent;
  close(): Promise<void>;
}

export interface OpenCxoneOptions {
  /** Wraps the tenant's rate limiter, e.g. to measure waits. */
  wrapLimiter?: (limiter: RateLimiter) => RateLimiter;
  /**
   * A limiter of this process alone, touching no ledger: for `doctor`, whose
   * couple of calls must not create or migrate the ledger it is checking.
   */
  ownLimiter?: boolean;
}

/** The tenant's rate budgets: every API request counts against CXREC_RATE_LIMIT per minute. */
export function rateBudgets(config: Config): RateBudget<typeof apiBudgetName>[] {
  return [{ name: apiBudgetName, limit: config.rateLimitPerMinute, windowMs: 60_000 }];
}

export async function openCxone(
  config: Config,
  log: Logger,
  options: OpenCxoneOptions = {},
): Promise<CxoneRuntime> {
  const cxone = requireCxone(config);
  // Processes sharing a PostgreSQL ledger share the tenant's budgets through it too.
  const budgets = await openRateLimiters(
    options.ownLimiter ? { kind: 'memory' } : config.stateTarget,
    rateBudgets(config),
    { tenantKey: new URL(cxone.apiUrl).host, logger: log },
  );
  const limiter = budgets.limiters[apiBudgetName];
  const dispatcher = createHttpAgent();
  const client = new CxoneClient({
    apiUrl: cxone.apiUrl,
    clientId: cxone.clientId,
    clientSecret: cxone.clientSecret,
    rateLimiter: options.wrapLimiter ? options.wrapLimiter(limiter) : limiter,
    backoffBaseMs: config.backoffSeconds * 1000,
    dispatcher,
    logger: log,
  });
  return {
    client,
    api: cxoneRecordingApi(client),
    dispatcher,
    async close() {
      await client.close();
      await dispatcher.close();
      await budgets.close();
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
