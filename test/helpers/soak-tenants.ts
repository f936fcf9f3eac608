/**
 * The simulated tenant a chaos soak runs against, for either dialect: the
 * simulator with every fault kind on, the variables the exporter needs to
 * reach it, and the invariant check against that simulator's truth. The
 * soaks (`chaos-soak.ts`, `chaos-distributed.ts`) are written once against
 * this, so the platform dialect gets the same SIGKILLs and the same table.
 */
import type { Dialect } from '../../src/config.js';
import type { FaultKind } from '../../src/simulator/faults.js';
import { startSimulator } from '../../src/simulator/index.js';
import { startPlatformSimulator } from '../../src/simulator/platform/index.js';
import type { Channel, JobRow } from '../../src/state/ledger.js';
import { checkInvariants, type InvariantReport } from './invariants.js';
import { checkPlatformInvariants, playbackBudgetLine } from './platform-invariants.js';

export interface SoakTenantOptions {
  /** @default 'recording-api' */
  dialect?: Dialect;
  recordings: number;
  seed: number;
  timeScale: number;
  /** Tenant limit and `CXREC_RATE_LIMIT`, requests per 60 s. */
  rateLimit: number;
  /** Platform only: the playback budget and `CXREC_PLAYBACK_LIMIT`, requests per 60 s. @default 600 */
  playbackLimit?: number;
  media: { minBytes: number; maxBytes: number };
}

/** Moments of an export the soak can aim a SIGKILL at, counted by the simulator. */
export type SoakMilestone = 'login' | 'listing' | 'transfer';

export interface SoakTenant {
  readonly dialect: Dialect;
  /** How the exporter reaches the tenant, and its budgets. */
  readonly env: NodeJS.ProcessEnv;
  /** `--since` of the exports: the start of the generated calls. */
  readonly since: string;
  /** Every invariant, against the truth as it is now. */
  report(where: {
    storageDir: string;
    statePath: string;
    channels?: readonly Channel[];
  }): Promise<InvariantReport>;
  /** What the truth owes the ledger that it has no row for yet (for messages), from the ledger's rows. */
  missing(rows: readonly JobRow[], channels?: readonly Channel[]): Promise<string[]>;
  faults(): Record<FaultKind, number>;
  /** Requests so far that mark each milestone: token requests, listing calls, media requests. */
  milestones(): Record<SoakMilestone, number>;
  calls(): Record<string, number>;
  /** Figures beside the table: tokens, cursors, the playback budget. */
  statsLines(): string[];
  stop(): Promise<void>;
}

const callTotals = (calls: Record<string, { total: number }>): Record<string, number> =>
  Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v.total]));

export async function startSoakTenant(options: SoakTenantOptions): Promise<SoakTenant> {
  return options.dialect === 'platform' ? startPlatformTenant(options) : startRecordingApiTenant(options);
}

async function startRecordingApiTenant(options: SoakTenantOptions): Promise<SoakTenant> {
  const sim = await startSimulator({
    recordings: options.recordings,
    seed: options.seed,
    timeScale: options.timeScale,
    faults: 'chaos',
    rateLimit: { requests: options.rateLimit, windowSeconds: 60 },
    media: options.media,
  });
  return {
    dialect: 'recording-api',
    env: {
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
      CXREC_RATE_LIMIT: String(options.rateLimit),
    },
    since: (await sim.truth()).createdFrom,
    report: async ({ storageDir, statePath, channels }) =>
      checkInvariants({
        truth: await sim.truth(),
        stats: sim.stats(),
        storageDir,
        statePath,
        ...(channels === undefined ? {} : { channels }),
      }),
    async missing(rows, channels = ['combined']) {
      const have = new Set(rows.map((r) => `${r.recordingId}\u0000${r.channel}`));
      return (await sim.truth()).recordings
        .filter((r) =>
          r.channels.some(
            (c) => channels.includes(c.channel) && !have.has(`${r.recordingId}\u0000${c.channel}`),
          ),
        )
        .map((r) => `${r.recordingId} (${r.origin}, indexed ${r.indexedAt}, created ${r.createdDate})`);
    },
    faults: () => sim.stats().faults,
    milestones() {
      const { calls } = sim.stats();
      return { login: calls.token.total, listing: calls.search.total, transfer: calls.media.total };
    },
    calls: () => callTotals(sim.stats().calls),
    statsLines() {
      const stats = sim.stats();
      return [
        `tokens ${JSON.stringify(stats.tokens)}, cursors ${JSON.stringify(stats.cursors)}, recordings inserted into the index while listed ${stats.listingInserts}`,
      ];
    },
    stop: () => sim.stop(),
  };
}

async function startPlatformTenant(options: SoakTenantOptions): Promise<SoakTenant> {
  const playbackLimit = options.playbackLimit ?? 600;
  const sim = await startPlatformSimulator({
    recordings: options.recordings,
    seed: options.seed,
    timeScale: options.timeScale,
    faults: 'chaos',
    rateLimit: { requests: options.rateLimit, windowSeconds: 60 },
    playbackLimit: { requests: playbackLimit, windowSeconds: 60 },
    media: options.media,
    // A stalled transfer is dropped after 2 s, well inside the client's 30 s body timeout.
    stallMs: 2000,
  });
  const key = sim.accessKey();
  const app = sim.applications[0]!;
  const truth = await sim.truth();
  return {
    dialect: 'platform',
    env: {
      CXONE_AUTH_URL: sim.urls.issuer,
      CXONE_ACCESS_KEY_ID: key.id,
      CXONE_ACCESS_KEY_SECRET: key.secret,
      CXONE_CLIENT_ID: app.id,
      CXONE_CLIENT_SECRET: app.secret,
      CXREC_RATE_LIMIT: String(options.rateLimit),
      CXREC_PLAYBACK_LIMIT: String(playbackLimit),
      CXREC_PLAYBACK_WINDOW_SECONDS: '60',
      // Processing takes at most 180 s of platform time: 0.3 s at a time scale of 600.
      CXREC_MAX_PROCESSING_MINUTES: '0.1',
    },
    since: truth.createdFrom,
    report: async ({ storageDir, statePath }) =>
      checkPlatformInvariants({ truth: await sim.truth(), stats: sim.stats(), storageDir, statePath }),
    async missing(rows) {
      const have = new Set(rows.map((r) => r.recordingId));
      return (await sim.truth()).masterContacts
        .filter(
          (m) => Date.parse(m.startDate) >= Date.parse(truth.createdFrom) && !have.has(m.masterContactId),
        )
        .map(
          (m) => `${m.masterContactId} (${m.origin}, indexed ${m.firstIndexedAt}, started ${m.startDate})`,
        );
    },
    faults: () => sim.stats().faults,
    milestones() {
      const stats = sim.stats();
      const { calls } = stats;
      return {
        login: calls.token.total,
        listing: calls['completed-contacts'].total,
        // Counted as each media request arrives (the route's total counts answers, at the end of a transfer).
        transfer: stats.media.objects.reduce((n, o) => n + o.requests, 0),
      };
    },
    calls: () => callTotals(sim.stats().calls),
    statsLines() {
      const stats = sim.stats();
      return [
        playbackBudgetLine(stats),
        `tokens ${JSON.stringify(stats.tokens)}, contacts indexed while listed ${stats.listingInserts}`,
      ];
    },
    stop: () => sim.stop(),
  };
}
