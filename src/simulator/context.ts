/** The parts of a running simulator that its routes share. */
import type { CursorStore } from './cursor.js';
import type { FaultInjector } from './faults.js';
import type { Presigner } from './presign.js';
import type { SlidingWindowLimiter } from './rate-limit.js';
import type { ResolvedOptions } from './resolved-options.js';
import type { StatsRecorder } from './stats.js';
import type { Tenant } from './tenant.js';
import type { TokenStore } from './tokens.js';

export interface SimulatorContext {
  readonly options: ResolvedOptions;
  readonly tenant: Tenant;
  readonly tokens: TokenStore;
  readonly cursors: CursorStore;
  readonly presigner: Presigner;
  readonly limiter: SlidingWindowLimiter;
  readonly faults: FaultInjector;
  readonly stats: StatsRecorder;
  /** `http://host:port`, known once the server listens. */
  baseUrl: string;
}
