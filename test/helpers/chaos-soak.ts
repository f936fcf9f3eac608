/**
 * The chaos soak: the real `cxrec export` against a simulated tenant of
 * either dialect (`soak-tenants.ts`) with
 * every fault kind on (`faults: 'chaos'`), SIGKILLed at seeded random
 * moments, then rerun until it exits 0, and the invariants checked at the
 * end. Shared by `npm run chaos` (1 000 recordings, 10 kills) and
 * `test/e2e/chaos-short.test.ts` (200 recordings, 3 kills), and for the
 * platform dialect by `test/e2e/platform-chaos-short.test.ts`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Dialect } from '../../src/config.js';
import type { FaultKind } from '../../src/simulator/faults.js';
import type { Channel } from '../../src/simulator/index.js';
import { SeededRandom } from '../../src/simulator/seeded-random.js';
import {
  evaluateInvariants,
  formatInvariants,
  type InvariantReport,
  type InvariantResult,
} from './invariants.js';
import { startCli, type CliResult } from './run-cli.js';
import { startSoakTenant, type SoakMilestone } from './soak-tenants.js';

export interface ChaosSoakOptions {
  /** Which CXone dialect the simulated tenant speaks. @default 'recording-api' */
  dialect?: Dialect;
  recordings: number;
  /** SIGKILLs to aim at the exporter before the reruns. */
  kills: number;
  /** Seeds the tenant, its fault dice and the kill moments. @default 1 */
  seed?: number;
  /**
   * Platform time runs this much faster: with 600 a URL lives 1.5 s, a token
   * 6 s, a cursor 1 s and the longest transcoding 0.5 s, so every lifecycle
   * step and expiry happens many times within one run.
   * @default 600
   */
  timeScale?: number;
  /** Media sizes of each channel, bytes. */
  media: { minBytes: number; maxBytes: number };
  /** Tenant limit and `CXREC_RATE_LIMIT`, requests per 60 s. @default 1200 */
  rateLimit?: number;
  /** Platform only: the playback budget and `CXREC_PLAYBACK_LIMIT`, requests per 60 s. @default 600 */
  playbackLimit?: number;
  /**
   * Kills aimed at a moment of the export, one export each, before the
   * seeded random ones of `killDelayMs`: ms after it started, or right
   * after the tenant saw its first login, listing call or media transfer
   * (`plusMs` later), which start-up time on a loaded machine cannot shift.
   * @default []
   */
  killAt?: readonly (number | KillPoint)[];
  /** Each kill lands uniformly within this range of ms after the export started. */
  killDelayMs: readonly [min: number, max: number];
  /** Reruns after the kills, each until it exits; the soak fails when none exits 0. @default 6 */
  maxReruns?: number;
  /** One export process is SIGKILLed (and counted as a failed rerun) after this long. @default 300_000 */
  runTimeoutMs?: number;
  /** The whole soak gives up after this long. @default 900_000 */
  deadlineMs?: number;
  /** `CXREC_CHANNELS`. @default ['combined'] */
  channels?: readonly Channel[];
  /** `CXREC_CONCURRENCY`. @default 4 */
  concurrency?: number;
  /** Progress lines (one per export process). @default nothing */
  log?: (line: string) => void;
  /** Stops the soak early (SIGINT of the script): the running export is killed and the temp dir removed. */
  signal?: AbortSignal;
}

export interface KillPoint {
  after: SoakMilestone;
  /** @default 0 */
  plusMs?: number;
}

export interface ExportRun {
  phase: 'kill' | 'rerun';
  /** When the SIGKILL was due (kill phase): ms after start, or a milestone. */
  killAt: number | KillPoint | null;
  /** The SIGKILL landed on a live process (not one that had already exited). */
  killed: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
  /** The tail of stderr, for a run that failed on its own. */
  stderrTail: string;
}

export interface ChaosSoakResult {
  report: InvariantReport;
  results: InvariantResult[];
  /** Every invariant holds and the last rerun exited 0 within the deadline. */
  pass: boolean;
  /** Why the soak itself failed, besides the invariants (no rerun exited 0, deadline passed). */
  problems: string[];
  runs: ExportRun[];
  killsLanded: number;
  durationMs: number;
  faultsInjected: Record<FaultKind, number>;
  calls: Record<string, number>;
  /** Everything above as text, for a log or an assertion message. */
  text: string;
}

/** Runs the soak; always stops the simulator and removes its temp dir. */
export async function runChaosSoak(options: ChaosSoakOptions): Promise<ChaosSoakResult> {
  const started = Date.now();
  const seed = options.seed ?? 1;
  const limit = options.rateLimit ?? 1200;
  const deadline = started + (options.deadlineMs ?? 900_000);
  const runTimeoutMs = options.runTimeoutMs ?? 300_000;
  const channels = options.channels ?? ['combined'];
  const log = options.log ?? (() => undefined);
  // A function, not a property read, so the checks after each await see the signal as it is then.
  const aborted = (): boolean => options.signal?.aborted === true;
  // Its own stream, so the kill moments do not depend on how many dice the tenant drew.
  const random = new SeededRandom(seed, 101);

  const tenant = await startSoakTenant({
    ...(options.dialect === undefined ? {} : { dialect: options.dialect }),
    recordings: options.recordings,
    seed,
    timeScale: options.timeScale ?? 600,
    rateLimit: limit,
    ...(options.playbackLimit === undefined ? {} : { playbackLimit: options.playbackLimit }),
    media: options.media,
  });
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-chaos-'));
  try {
    const storageDir = join(dir, 'store');
    const statePath = join(dir, 'state.db');
    const since = tenant.since;
    const env: NodeJS.ProcessEnv = {
      ...tenant.env,
      CXREC_STORAGE: storageDir,
      CXREC_STATE: statePath,
      CXREC_CHANNELS: channels.join(','),
      CXREC_CONCURRENCY: String(options.concurrency ?? 4),
      CXREC_POLL_SECONDS: '0.05',
      CXREC_BACKOFF_SECONDS: '0.02',
      CXREC_LOG_LEVEL: 'warn',
    };

    const runs: ExportRun[] = [];
    const problems: string[] = [];
    const runExport = async (
      phase: ExportRun['phase'],
      killAt: number | KillPoint | null,
    ): Promise<ExportRun> => {
      const runStarted = Date.now();
      const baseline = tenant.milestones();
      const run = startCli(['export', '--since', since], env);
      // An object, since the kill happens in a callback the control-flow analysis cannot see.
      const outcome = { killed: false };
      const kill = (): void => {
        // exitCode/signalCode are null only while the process is alive: a kill after exit is not a kill.
        if (run.child.exitCode === null && run.child.signalCode === null) {
          outcome.killed = run.child.kill('SIGKILL');
        }
      };
      const killAtMs = typeof killAt === 'number' ? killAt : null;
      const budget = Math.min(killAtMs ?? runTimeoutMs, runTimeoutMs, Math.max(0, deadline - Date.now()));
      const timer = setTimeout(kill, budget);
      // A milestone is watched on the simulator's counters: the kill lands `plusMs` after it was first seen.
      const watch =
        killAt === null || typeof killAt === 'number'
          ? undefined
          : setInterval(() => {
              if (tenant.milestones()[killAt.after] <= baseline[killAt.after]) return;
              clearInterval(watch);
              setTimeout(kill, killAt.plusMs ?? 0);
            }, 10);
      const onAbort = (): void => kill();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      let res: CliResult;
      try {
        res = await run.done;
      } finally {
        clearTimeout(timer);
        clearInterval(watch);
        options.signal?.removeEventListener('abort', onAbort);
      }
      const record: ExportRun = {
        phase,
        killAt,
        killed: outcome.killed,
        code: res.code,
        signal: res.signal,
        durationMs: Date.now() - runStarted,
        stderrTail: res.stderr.slice(-2000),
      };
      runs.push(record);
      const aim = killAt === null || typeof killAt === 'number' ? '' : ` (after the first ${killAt.after})`;
      log(
        `${phase} ${runs.length}: ${outcome.killed ? `SIGKILL at ${record.durationMs} ms${aim}` : `exit ${res.code ?? res.signal ?? '?'} after ${record.durationMs} ms`}`,
      );
      return record;
    };

    const [minDelay, maxDelay] = options.killDelayMs;
    const killAt: (number | KillPoint)[] = [...(options.killAt ?? [])];
    for (let i = killAt.length; i < options.kills; i++) killAt.push(random.int(minDelay, maxDelay));
    for (const at of killAt) {
      if (Date.now() >= deadline || aborted()) break;
      await runExport('kill', at);
    }
    let finished = false;
    for (let i = 0; i < (options.maxReruns ?? 6) && Date.now() < deadline && !aborted(); i++) {
      const run = await runExport('rerun', null);
      if (run.code === 0) {
        finished = true;
        break;
      }
      if (run.killed)
        problems.push(`a rerun was still going after ${runTimeoutMs} ms (or the deadline) and was killed`);
      else problems.push(`a rerun exited ${run.code ?? run.signal ?? '?'}: ${run.stderrTail.slice(-500)}`);
    }
    if (!finished) problems.push('no rerun exited 0 within the bounded attempts and the deadline');
    if (aborted()) problems.push('stopped early');

    const report = await tenant.report({ storageDir, statePath, channels });
    const results = evaluateInvariants(report);
    const killsLanded = runs.filter((r) => r.phase === 'kill' && r.killed).length;
    const calls = tenant.calls();
    const faults = tenant.faults();
    const durationMs = Date.now() - started;
    const pass = problems.length === 0 && results.every((r) => r.pass);
    const text = [
      formatInvariants(report, results),
      `${tenant.dialect}: kills landed ${killsLanded}/${killAt.length}, export processes ${runs.length}, soak ${(durationMs / 1000).toFixed(1)} s`,
      `faults injected ${JSON.stringify(faults)}`,
      `calls ${JSON.stringify(calls)}`,
      ...tenant.statsLines(),
      ...problems.map((p) => `problem: ${p}`),
    ].join('\n');
    return {
      report,
      results,
      pass,
      problems,
      runs,
      killsLanded,
      durationMs,
      faultsInjected: faults,
      calls,
      text,
    };
  } finally {
    await tenant.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
