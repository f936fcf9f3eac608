/**
 * The CXone tenant simulator: a real HTTP server that speaks every line of
 * /work/shared/cxone-api.md, traps included, for tests, benchmarks and
 * `cxrec simulate`.
 *
 *     const sim = await startSimulator({ recordings: 20, timeScale: 600 });
 *     // CXONE_API_URL = sim.url, client cxrec-demo / demo-secret
 *     await sim.stop();
 */
import type { AddressInfo } from 'node:net';

import type { SimulatorContext } from './context.js';
import { CursorStore } from './cursor.js';
import { FaultInjector } from './faults.js';
import { objectHashes, type ObjectHashes } from './media.js';
import type {
  Channel,
  ClientSpec,
  FaultProbabilities,
  FaultsOption,
  RateLimitOptions,
  RecordingSpec,
  SimulatorOptions,
} from './options.js';
import { Presigner } from './presign.js';
import { SlidingWindowLimiter } from './rate-limit.js';
import { resolveOptions } from './resolved-options.js';
import { createSimulatorServer, statsSnapshot } from './server.js';
import { StatsRecorder, type SimulatorStats } from './stats.js';
import { Tenant, type SimulatorTruth } from './tenant.js';
import { TokenStore } from './tokens.js';

export type * from './options.js';
export type { SimulatorStats, Endpoint, CallOutcome } from './stats.js';
export type {
  SimulatorTruth,
  TruthRecording,
  TruthChannel,
  ExpectedOutcome,
  RecordingTrait,
  RecordingOrigin,
} from './tenant.js';
export type { ObjectHashes } from './media.js';
export { faultProfiles } from './faults.js';
export { hostileIdSamples } from './tenant.js';

export interface Simulator {
  /** Base URL of the API and the media host, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** The tenant's API clients; the first is the default one. */
  readonly clients: readonly ClientSpec[];
  /** Closes the server and every open connection (transfers in flight are cut). */
  stop(): Promise<void>;
  /** Same as `GET /__stats`. */
  stats(): SimulatorStats;
  /** Zeroes the counters of `stats()` (fault dice and tenant state are kept). */
  resetStats(): void;
  /** Same as `GET /__truth`. Hashes every object it has not hashed yet: about 5 s per GiB of media, once. */
  truth(): Promise<SimulatorTruth>;
  /** md5/sha256/size of one object as a complete download yields it (cached). */
  objectHashes(recordingId: string, channel: Channel): Promise<ObjectHashes & { sizeBytes: number }>;
  /** Every recording id, in createdDate order (oldest first). */
  recordingIds(): string[];
  /** Revokes every token issued so far: the next API call with one gets 401 invalid_token. */
  revokeAllTokens(): number;
  /** Drops every search cursor: the next page request with one gets 400 invalid_page_token. */
  invalidateCursors(): void;
  /** Adds recordings now (indexed at once unless `lateIndexMs`); returns their ids. Lifecycle delays count from now. */
  addRecordings(specs: readonly RecordingSpec[]): string[];
  /** Purges a recording's media from now on, as the retention job would. */
  purge(recordingId: string): void;
  setFaults(faults: FaultsOption): void;
  faults(): Required<FaultProbabilities>;
  /** Replaces the rate limit and forgets the requests counted so far. */
  setRateLimit(limit: RateLimitOptions | false): void;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const resolved = resolveOptions(options);
  const ctx: SimulatorContext = {
    options: resolved,
    tenant: new Tenant(resolved),
    tokens: new TokenStore(resolved.tokenTtlRealMs),
    cursors: new CursorStore(resolved.cursorIdleRealMs),
    presigner: new Presigner(),
    limiter: new SlidingWindowLimiter(resolved.rateLimit),
    faults: new FaultInjector(resolved.faults, resolved.seed),
    stats: new StatsRecorder(resolved.rateLimit ? resolved.rateLimit.windowSeconds : 60),
    baseUrl: '',
  };
  const server = createSimulatorServer(ctx);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = resolved.host === '0.0.0.0' || resolved.host === '::' ? '127.0.0.1' : resolved.host;
  ctx.baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let stopped: Promise<void> | undefined;
  return {
    url: ctx.baseUrl,
    port,
    clients: resolved.clients,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
    stats: () => statsSnapshot(ctx),
    resetStats: () => {
      ctx.stats.reset();
      ctx.faults.resetCounts();
    },
    truth: () => ctx.tenant.truth(Date.now()),
    async objectHashes(recordingId, channel) {
      const r = ctx.tenant.get(recordingId);
      if (!r) throw new RangeError(`no recording ${recordingId}`);
      const obj = r.objects[channel];
      return { ...(await objectHashes(obj)), sizeBytes: obj.sizeBytes };
    },
    recordingIds: () => ctx.tenant.ids(),
    revokeAllTokens: () => {
      const n = ctx.tokens.revokeAll();
      ctx.stats.tokensRevoked += n;
      return n;
    },
    invalidateCursors: () => ctx.cursors.invalidate(),
    addRecordings: (specs) => ctx.tenant.addRecordings(specs, Date.now()),
    purge: (recordingId) => ctx.tenant.purge(recordingId, Date.now()),
    setFaults: (faults) => ctx.faults.set(faults),
    faults: () => ctx.faults.current(),
    setRateLimit: (limit) => ctx.limiter.setLimit(limit),
  };
}
