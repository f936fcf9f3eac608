/**
 * The platform-dialect tenant simulator: three real HTTP servers — the
 * issuer, the API host and the media host — speaking every line of
 * /work/shared/cxone-platform-api.md, traps included.
 *
 *     const sim = await startPlatformSimulator({ recordings: 20, timeScale: 600 });
 *     // CXONE_AUTH_URL = sim.urls.issuer, access key sim.accessKeys[0], application sim.applications[0]
 *     await sim.stop();
 *
 * `/__stats` and `/__truth` are served by the API host (`sim.urls.api`).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

import { FaultInjector, faultKinds } from '../faults.js';
import type { FaultProbabilities, FaultsOption } from '../options.js';
import { Presigner } from '../presign.js';
import { SlidingWindowLimiter } from '../rate-limit.js';
import { SeededRandom } from '../seeded-random.js';
import { createApiServer } from './api-host.js';
import type { PlatformContext } from './context.js';
import { createIssuerServer, tenantArea } from './issuer.js';
import { createMediaServer } from './media-host.js';
import type {
  AccessKeySpec,
  ApplicationSpec,
  BudgetOptions,
  CallSpec,
  PlatformSimulatorOptions,
} from './options.js';
import { resolvePlatformOptions } from './resolved-options.js';
import { PlatformStatsRecorder, type BudgetName, type PlatformSimulatorStats } from './stats.js';
import { PlatformTenant, type PlatformTruth } from './tenant.js';
import { PlatformTokens } from './tokens.js';

export type * from './options.js';
export type { PlatformSimulatorStats, PlatformRoute, BudgetName, BudgetStats } from './stats.js';
export type {
  PlatformTruth,
  TruthMasterContact,
  TruthObject,
  PlatformExpected,
  PlatformTrait,
  PlatformOrigin,
} from './tenant.js';
export { defaultAccessKeys, defaultApplication } from './resolved-options.js';
export { playbackEpochMs } from './tenant.js';

export interface PlatformSimulator {
  /** Base URLs, no trailing slash. `issuer` is `CXONE_AUTH_URL`; `api` is what tenant discovery returns. */
  readonly urls: { readonly issuer: string; readonly api: string; readonly media: string };
  readonly ports: { readonly issuer: number; readonly api: number; readonly media: number };
  readonly tenantId: string;
  readonly businessUnitId: number;
  /** The first key has every permission; see `accessKey()` for the permission-less ones. */
  readonly accessKeys: readonly AccessKeySpec[];
  readonly applications: readonly ApplicationSpec[];
  /** The first access key with the given permissions (and active), e.g. `{ playback: false }`. */
  accessKey(want?: { reporting?: boolean; playback?: boolean; active?: boolean }): AccessKeySpec;
  stop(): Promise<void>;
  /** Same as `GET {api}/__stats`. */
  stats(): PlatformSimulatorStats;
  resetStats(): void;
  /** Same as `GET {api}/__truth`. */
  truth(): Promise<PlatformTruth>;
  /** Phone master contact ids, in start order. */
  masterContactIds(): string[];
  /** Revokes every access token issued so far (refresh tokens too when asked): the next call gets 401. */
  revokeAllTokens(options?: { refreshTokens?: boolean }): number;
  /** Adds calls now; returns each call's master contact ids. */
  addCalls(specs: readonly CallSpec[]): string[][];
  /** Purges a master contact's media from now on. */
  purge(masterContactId: string): void;
  setFaults(faults: FaultsOption): void;
  faults(): Required<FaultProbabilities>;
  /** Replaces one budget and forgets the requests it counted so far. */
  setLimit(budget: BudgetName, limit: BudgetOptions | false): void;
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function startPlatformSimulator(
  options: PlatformSimulatorOptions = {},
): Promise<PlatformSimulator> {
  const resolved = resolvePlatformOptions(options);
  const tenant = new PlatformTenant(resolved);
  const windowOf = (b: BudgetOptions | false, fallback: number) => (b ? b.windowSeconds : fallback);
  const limits: Record<BudgetName, BudgetOptions | false> = {
    playback: resolved.playbackLimit,
    other: resolved.rateLimit,
  };
  const ctx: PlatformContext = {
    options: resolved,
    tenant,
    tokens: new PlatformTokens(
      { tenantId: tenant.tenantId, businessUnitId: tenant.businessUnitId, area: tenantArea },
      resolved.tokenTtlRealMs,
      resolved.refreshTokenTtlRealMs,
    ),
    presigner: new Presigner(),
    limiters: {
      playback: new SlidingWindowLimiter(limits.playback),
      other: new SlidingWindowLimiter(limits.other),
    },
    faults: new FaultInjector(resolved.faults, resolved.seed),
    stats: new PlatformStatsRecorder({
      playback: windowOf(limits.playback, 300),
      other: windowOf(limits.other, 60),
    }),
    shapes: new SeededRandom(resolved.seed, 29),
    urls: { issuer: '', api: '', media: '' },
    snapshot: () =>
      ctx.stats.snapshot({
        limits: { playback: ctx.limiters.playback.current, other: ctx.limiters.other.current },
        faults: Object.fromEntries(
          faultKinds.map((k) => [k, ctx.faults.injected[k]]),
        ) as PlatformSimulatorStats['faults'],
        tokens: {
          issued: ctx.tokens.issued,
          refreshed: ctx.tokens.refreshed,
          revoked: ctx.tokens.revoked,
          rejected: ctx.tokens.rejected,
        },
        listingInserts: tenant.insertedWhileListing,
      }),
  };
  const servers = [createIssuerServer(ctx), createApiServer(ctx), createMediaServer(ctx)] as const;
  const ports: number[] = [];
  try {
    for (const [i, server] of servers.entries()) {
      ports.push(await listen(server, resolved.port === 0 ? 0 : resolved.port + i, resolved.host));
    }
  } catch (err) {
    for (const server of servers) if (server.listening) server.close();
    throw err;
  }
  const host = resolved.host === '0.0.0.0' || resolved.host === '::' ? '127.0.0.1' : resolved.host;
  const base = (port: number | undefined) => `http://${host.includes(':') ? `[${host}]` : host}:${port ?? 0}`;
  ctx.urls = { issuer: base(ports[0]), api: base(ports[1]), media: base(ports[2]) };

  let stopped: Promise<void> | undefined;
  return {
    urls: { ...ctx.urls },
    ports: { issuer: ports[0] ?? 0, api: ports[1] ?? 0, media: ports[2] ?? 0 },
    tenantId: tenant.tenantId,
    businessUnitId: tenant.businessUnitId,
    accessKeys: resolved.accessKeys,
    applications: resolved.applications,
    accessKey(want = {}) {
      const key = resolved.accessKeys.find(
        (k) =>
          (k.reporting ?? true) === (want.reporting ?? true) &&
          (k.playback ?? true) === (want.playback ?? true) &&
          (k.active ?? true) === (want.active ?? true),
      );
      if (!key) throw new RangeError(`no access key with ${JSON.stringify(want)}`);
      return key;
    },
    stop() {
      stopped ??= Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      ).then(() => undefined);
      return stopped;
    },
    stats: () => ctx.snapshot(),
    resetStats: () => {
      ctx.stats.reset();
      ctx.faults.resetCounts();
    },
    truth: () => tenant.truth(Date.now()),
    masterContactIds: () => tenant.masterContactIds(),
    revokeAllTokens: (opts) => ctx.tokens.revokeAll(opts),
    addCalls: (specs) => tenant.addCalls(specs, Date.now()),
    purge: (id) => tenant.purge(id, Date.now()),
    setFaults: (faults) => ctx.faults.set(faults),
    faults: () => ctx.faults.current(),
    setLimit(budget, limit) {
      ctx.limiters[budget].setLimit(limit);
      ctx.stats.rewindow(budget, windowOf(limit, budget === 'playback' ? 300 : 60));
    },
  };
}
