/** The parts of a running platform simulator that its three hosts share. */
import type { FaultInjector } from '../faults.js';
import type { Presigner } from '../presign.js';
import type { SlidingWindowLimiter } from '../rate-limit.js';
import type { SeededRandom } from '../seeded-random.js';
import type { PlatformResolvedOptions } from './resolved-options.js';
import type { BudgetName, PlatformSimulatorStats, PlatformStatsRecorder } from './stats.js';
import type { PlatformTenant } from './tenant.js';
import type { PlatformTokens } from './tokens.js';

export interface PlatformContext {
  readonly options: PlatformResolvedOptions;
  readonly tenant: PlatformTenant;
  readonly tokens: PlatformTokens;
  readonly presigner: Presigner;
  readonly limiters: Record<BudgetName, SlidingWindowLimiter>;
  readonly faults: FaultInjector;
  readonly stats: PlatformStatsRecorder;
  /** Picks the shapes of answers the contract leaves open (401 bodies, short pages): seeded. */
  readonly shapes: SeededRandom;
  /** `http://host:port` of each host, known once they listen. */
  urls: { issuer: string; api: string; media: string };
  /** The `/__stats` document. */
  snapshot(): PlatformSimulatorStats;
}
