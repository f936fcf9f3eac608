/**
 * The distributed chaos soak: several `cxrec run` processes sharing one
 * PostgreSQL ledger (and so the tenant's budgets) against a simulated tenant
 * of either dialect (`soak-tenants.ts`) with every fault kind on, run processes SIGKILLed at seeded random
 * moments (each one restarted, so the fleet stays whole), PostgreSQL itself
 * restarted once mid-run, and then, once the ledger has settled, the same
 * invariants as the single-process soak (`chaos-soak.ts`).
 *
 * Used by `npm run chaos` (after the single-process soak) and `npm run chaos
 * -- --distributed`. It is deliberately NOT part of `npm test`: restarting
 * the machine's PostgreSQL cuts every other test's connections, and
 * `npm test` runs test files in parallel.
 *
 * Needs root (or the postgres user) on a machine whose PostgreSQL is a
 * Debian `pg_ctlcluster` cluster listening on 127.0.0.1:5432, the one
 * `createTestDatabase()` uses.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { FaultKind } from '../../src/simulator/faults.js';
import type { Channel } from '../../src/simulator/index.js';
import { SeededRandom } from '../../src/simulator/seeded-random.js';
import type { JobRow, LedgerCounts } from '../../src/state/ledger.js';
import { parseStateTarget, type Dialect } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import {
  evaluateInvariants,
  formatInvariants,
  type InvariantReport,
  type InvariantResult,
} from './invariants.js';
import { createTestDatabase, type TestDatabase } from './postgres-database.js';
import { startCli, type CliResult, type CliRun } from './run-cli.js';
import { startSoakTenant, type SoakTenant } from './soak-tenants.js';

export interface DistributedSoakOptions {
  /** Which CXone dialect the simulated tenant speaks. @default 'recording-api' */
  dialect?: Dialect;
  recordings: number;
  /** SIGKILLs aimed at run processes (each at a live one, picked at random). */
  kills: number;
  /** Seeds the tenant, its fault dice, the kill moments and victims. @default 1 */
  seed?: number;
  /** Platform time speed-up, as in the single soak. @default 600 */
  timeScale?: number;
  media: { minBytes: number; maxBytes: number };
  /** Tenant limit and every process's `CXREC_RATE_LIMIT` (a shared budget), requests per 60 s. @default 1200 */
  rateLimit?: number;
  /** Platform only: the shared playback budget, requests per 60 s. @default 600 */
  playbackLimit?: number;
  /** `cxrec run` processes kept running. @default 3 */
  processes?: number;
  /** The first kill lands this long (uniform, ms) after the processes were started. */
  firstKillMs: readonly [min: number, max: number];
  /** Each later kill lands this long (uniform, ms) after the one before. */
  killGapMs: readonly [min: number, max: number];
  /** Restart PostgreSQL once, between two kills (seeded which). @default true */
  restartPostgres?: boolean;
  /** `CXREC_CONCURRENCY` of each process. @default 4 */
  concurrency?: number;
  /** `CXREC_CHANNELS`. @default ['combined'] */
  channels?: readonly Channel[];
  /** How long the SIGTERMed processes get to park their transfers and exit. @default 60_000 */
  stopTimeoutMs?: number;
  /** The whole soak gives up waiting for the ledger to settle after this long. @default 900_000 */
  deadlineMs?: number;
  /** How long the backlog may stay empty while the ledger still lacks recordings of the truth. @default 60_000 */
  quietMs?: number;
  /** Restarts of processes that exited by themselves, beyond which the soak stops restarting (crash loop). @default 40 */
  maxUnexpectedExits?: number;
  log?: (line: string) => void;
  /** Stops the soak early: every child is killed, PostgreSQL left running, the database dropped. */
  signal?: AbortSignal;
}

/** One `cxrec run` process of the soak, from spawn to exit. */
export interface RunProcess {
  slot: number;
  /** 0 for the first process of a slot, +1 for each restart. */
  generation: number;
  pid: number | undefined;
  startedAtMs: number;
  endedAtMs: number | null;
  /** What we sent it: SIGKILL (chaos), SIGTERM (the orderly stop at the end), or nothing. */
  sent: 'SIGKILL' | 'SIGTERM' | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It exited while PostgreSQL was restarting or within 15 s of it being back. */
  nearPostgresRestart: boolean;
  stderrTail: string;
}

export interface DistributedSoakResult {
  report: InvariantReport | null;
  results: InvariantResult[];
  /** Every invariant holds, the ledger settled, and every process exited 0 on SIGTERM. */
  pass: boolean;
  /** What broke the soak itself (not settled, a process not exiting 0 on SIGTERM, the restart failing). */
  problems: string[];
  /** Worth a look but not a failure: processes that exited without being told to. */
  findings: string[];
  processes: RunProcess[];
  killsLanded: number;
  /** Processes that exited by themselves (not SIGKILLed or SIGTERMed by the soak). */
  unexpectedExits: RunProcess[];
  restarts: number;
  postgresRestart: { atMs: number; downMs: number; backlogBefore: number | null } | null;
  settledAtMs: number | null;
  durationMs: number;
  faultsInjected: Record<FaultKind, number> | null;
  calls: Record<string, number>;
  text: string;
}

const pgPort = '5432';
const pgHost = '127.0.0.1';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a command to its end; never rejects (a spawn error is reported as exit 127). */
function exec(
  cmd: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // Its own process group, so a Ctrl-C of the soak does not interrupt pg_ctlcluster halfway.
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, output: `${output}${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.trim() });
    });
  });
}

/** The Debian cluster version (`/etc/postgresql/<version>/main`); the lowest when there are several. */
function clusterVersion(): string {
  const versions = readdirSync('/etc/postgresql').sort();
  const v = versions[0];
  if (v === undefined) throw new Error('no PostgreSQL cluster under /etc/postgresql');
  return v;
}

function pgCtl(action: 'restart' | 'start'): Promise<{ code: number | null; output: string }> {
  return exec('pg_ctlcluster', ['--skip-systemctl-redirect', clusterVersion(), 'main', action], 120_000);
}

async function pgReady(): Promise<boolean> {
  return (await exec('pg_isready', ['-h', pgHost, '-p', pgPort], 10_000)).code === 0;
}

async function waitPgReady(timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await pgReady()) return true;
    await sleep(200);
  }
  return false;
}

/** The ledger's counts, or null while the database does not answer (it may be restarting). */
async function readCounts(url: string): Promise<LedgerCounts | null> {
  try {
    // A fresh connection each time: a pool kept across the PostgreSQL restart would first hand out dead clients.
    const ledger = await openLedger(parseStateTarget(url));
    try {
      return await ledger.counts();
    } finally {
      await ledger.close();
    }
  } catch {
    return null;
  }
}

/**
 * Each truth recording with a wanted channel the ledger has no row for
 * (with its origin and when it was indexed), or null while the ledger does not answer.
 */
async function missingRows(
  url: string,
  tenant: SoakTenant,
  channels: readonly Channel[],
): Promise<string[] | null> {
  let rows: JobRow[];
  try {
    const ledger = await openLedger(parseStateTarget(url));
    try {
      rows = await ledger.list({});
    } finally {
      await ledger.close();
    }
  } catch {
    return null;
  }
  return tenant.missing(rows, channels);
}

/** Runs the distributed soak; always kills its children, leaves PostgreSQL up, drops the database, removes temp dirs. */
export async function runDistributedSoak(options: DistributedSoakOptions): Promise<DistributedSoakResult> {
  const started = Date.now();
  const at = (): number => Date.now() - started;
  const seed = options.seed ?? 1;
  const limit = options.rateLimit ?? 1200;
  const slots = options.processes ?? 3;
  const channels = options.channels ?? ['combined'];
  const deadline = started + (options.deadlineMs ?? 900_000);
  const stopTimeoutMs = options.stopTimeoutMs ?? 60_000;
  const maxUnexpected = options.maxUnexpectedExits ?? 40;
  const log = options.log ?? (() => undefined);
  const aborted = (): boolean => options.signal?.aborted === true;
  // Its own stream (not the single soak's 101), so kill moments and victims are independent of the tenant's dice.
  const random = new SeededRandom(seed, 202);

  const problems: string[] = [];
  const findings: string[] = [];
  const processes: RunProcess[] = [];
  const live: (CliRun | undefined)[] = new Array<CliRun | undefined>(slots).fill(undefined);
  const liveRecord: (RunProcess | undefined)[] = new Array<RunProcess | undefined>(slots).fill(undefined);
  const exits: Promise<void>[] = [];
  let restarts = 0;
  let unexpected = 0;
  /** While true, any process that exits is replaced; false once the orderly stop (or cleanup) began. */
  const fleet = { supervising: true };
  // A function, so a check after an await reads the flag as it is then (TypeScript keeps property narrowing across awaits).
  const supervised = (): boolean => fleet.supervising;
  let pgWindow: { from: number; to: number | null } | null = null;
  // A holder, since the restart is recorded inside a closure the control-flow analysis cannot see into.
  const pgRestart: { result: DistributedSoakResult['postgresRestart'] } = { result: null };
  let settledAtMs: number | null = null;

  const tenant = await startSoakTenant({
    ...(options.dialect === undefined ? {} : { dialect: options.dialect }),
    recordings: options.recordings,
    seed,
    timeScale: options.timeScale ?? 600,
    rateLimit: limit,
    ...(options.playbackLimit === undefined ? {} : { playbackLimit: options.playbackLimit }),
    media: options.media,
  });
  let db: TestDatabase | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-chaos-dist-'));
  const onAbort = (): void => {
    fleet.supervising = false;
    live.forEach((run, slot) => {
      const record = liveRecord[slot];
      if (record) record.sent = 'SIGKILL';
      run?.child.kill('SIGKILL');
    });
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    db = await createTestDatabase();
    const storageDir = join(dir, 'store');
    const env: NodeJS.ProcessEnv = {
      ...tenant.env,
      CXREC_STORAGE: storageDir,
      CXREC_STATE: db.url,
      CXREC_CHANNELS: channels.join(','),
      CXREC_CONCURRENCY: String(options.concurrency ?? 4),
      CXREC_DISCOVER_SECONDS: '0.5',
      CXREC_POLL_SECONDS: '0.05',
      CXREC_BACKOFF_SECONDS: '0.05',
      CXREC_LOG_LEVEL: 'warn',
    };

    const spawnSlot = (slot: number, generation: number): void => {
      const run = startCli(['run'], env);
      const record: RunProcess = {
        slot,
        generation,
        pid: run.child.pid,
        startedAtMs: at(),
        endedAtMs: null,
        sent: null,
        code: null,
        signal: null,
        nearPostgresRestart: false,
        stderrTail: '',
      };
      processes.push(record);
      live[slot] = run;
      liveRecord[slot] = record;
      exits.push(
        run.done
          .catch((err: unknown): CliResult => ({
            code: null,
            signal: null,
            stdout: '',
            stderr: `spawn failed: ${err instanceof Error ? err.message : String(err)}`,
          }))
          .then(async (res) => {
            record.endedAtMs = at();
            record.code = res.code;
            record.signal = res.signal;
            record.stderrTail = res.stderr.slice(-1500);
            const w = pgWindow;
            record.nearPostgresRestart =
              w !== null &&
              record.endedAtMs >= w.from &&
              (w.to === null || record.endedAtMs <= w.to + 15_000);
            if (live[slot] === run) {
              live[slot] = undefined;
              liveRecord[slot] = undefined;
            }
            if (record.sent === null) {
              unexpected++;
              log(
                `slot ${slot}.${generation} (pid ${record.pid ?? '?'}) exited by itself: ${res.code ?? res.signal ?? '?'} at ${record.endedAtMs} ms${record.nearPostgresRestart ? ' (PostgreSQL restart)' : ''}`,
              );
            }
            if (!supervised()) return;
            if (unexpected > maxUnexpected) {
              if (unexpected === maxUnexpected + 1)
                problems.push(
                  `more than ${maxUnexpected} processes exited by themselves; stopped restarting`,
                );
              return;
            }
            // A process that died by itself waits a little, so a crash loop does not spin at full speed.
            await sleep(record.sent === null ? 1000 : 100);
            if (!supervised()) return;
            restarts++;
            spawnSlot(slot, generation + 1);
          }),
      );
    };

    for (let slot = 0; slot < slots; slot++) spawnSlot(slot, 0);
    log(`${slots} run processes started on ${db.url}`);
    // The chaos schedule, drawn up front so it depends on the seed alone.
    const gaps: number[] = [];
    for (let i = 0; i < options.kills; i++) {
      const [min, max] = i === 0 ? options.firstKillMs : options.killGapMs;
      gaps.push(random.int(min, max));
    }
    const victims = gaps.map(() => random.int(0, slots - 1));
    // Between two kills, away from both ends, so it lands among downloads and in-flight kills.
    const restartAfterKill =
      options.restartPostgres === false
        ? -1
        : options.kills >= 4
          ? random.int(2, options.kills - 2)
          : Math.floor(options.kills / 2);

    const restartPostgresNow = async (): Promise<void> => {
      const before = await readCounts(db!.url);
      const from = at();
      pgWindow = { from, to: null };
      log(`restarting PostgreSQL at ${from} ms (backlog ${before?.backlog ?? '?'})`);
      const res = await pgCtl('restart');
      if (res.code !== 0) problems.push(`pg_ctlcluster restart exited ${res.code ?? '?'}: ${res.output}`);
      const ready = await waitPgReady(60_000);
      if (!ready) problems.push('PostgreSQL not ready within 60 s of the restart');
      pgWindow.to = at();
      pgRestart.result = { atMs: from, downMs: pgWindow.to - from, backlogBefore: before?.backlog ?? null };
      if (before === null || before.backlog === 0)
        problems.push('the PostgreSQL restart did not land mid-run (no backlog before it)');
      log(`PostgreSQL back after ${pgWindow.to - from} ms`);
    };

    let killsLanded = 0;
    for (let i = 0; i < options.kills && !aborted() && Date.now() < deadline; i++) {
      await sleep(gaps[i] ?? 0);
      // The drawn victim, or the next live slot after it when that one is between a death and its restart.
      let victim: number | undefined;
      for (let tries = 0; victim === undefined && tries < 50 && !aborted(); tries++) {
        for (let k = 0; k < slots; k++) {
          const slot = ((victims[i] ?? 0) + k) % slots;
          const run = live[slot];
          if (run && run.child.exitCode === null && run.child.signalCode === null) {
            victim = slot;
            break;
          }
        }
        if (victim === undefined) await sleep(100);
      }
      const run = victim === undefined ? undefined : live[victim];
      const record = victim === undefined ? undefined : liveRecord[victim];
      if (run && record) {
        record.sent = 'SIGKILL';
        if (run.child.kill('SIGKILL')) killsLanded++;
        const counts = await readCounts(db.url);
        log(
          `kill ${i + 1}: slot ${victim}.${record.generation} (pid ${record.pid ?? '?'}) at ${at()} ms, backlog ${counts?.backlog ?? '?'}`,
        );
      } else {
        log(`kill ${i + 1}: no live process to kill`);
      }
      if (i === restartAfterKill && !aborted()) await restartPostgresNow();
    }
    if (options.kills === 0 && restartAfterKill === 0 && !aborted()) await restartPostgresNow();

    // Settle: no backlog and every row of the truth (read again each time: the index grows
    // while it is listed) in the ledger. A recording the fleet has not found after the
    // backlog has been empty for `quietMs` is one it will not find soon (the next deep
    // look-back is an hour away): stop waiting, and let the invariants report it lost.
    const quietMs = options.quietMs ?? 60_000;
    let quietSince: number | null = null;
    let lastLog = 0;
    while (!aborted()) {
      const counts = await readCounts(db.url);
      const missing = counts ? await missingRows(db.url, tenant, channels) : null;
      const state = counts ? JSON.stringify(counts.byState) : 'ledger unreadable';
      if (counts && missing !== null && counts.backlog === 0) {
        if (missing.length === 0) {
          settledAtMs = at();
          log(`settled at ${settledAtMs} ms: ${state}`);
          break;
        }
        quietSince ??= Date.now();
        if (Date.now() - quietSince > quietMs) {
          problems.push(
            `the backlog was empty for ${quietMs / 1000} s but the ledger still lacks ${missing.length} recording(s) of the truth: ${missing.slice(0, 5).join(', ')}`,
          );
          break;
        }
      } else {
        quietSince = null;
      }
      if (Date.now() > deadline) {
        problems.push(
          `not settled by the deadline: ${state}, ${missing?.length ?? '?'} recordings not in the ledger`,
        );
        break;
      }
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        log(`waiting at ${at()} ms: ${state}, ${missing?.length ?? '?'} recordings not in the ledger`);
      }
      await sleep(500);
    }

    // The orderly stop: every live process must park what it holds and exit 0.
    fleet.supervising = false;
    const stopping = live.flatMap((run, slot) => {
      const record = liveRecord[slot];
      if (!run || !record) return [];
      record.sent = 'SIGTERM';
      run.child.kill('SIGTERM');
      return [{ run, record }];
    });
    await Promise.all(
      stopping.map(async ({ run, record }) => {
        const timer = setTimeout(() => run.child.kill('SIGKILL'), stopTimeoutMs);
        const res = await run.done.catch(() => null);
        clearTimeout(timer);
        if (res?.code !== 0)
          problems.push(
            `slot ${record.slot}.${record.generation} exited ${res?.code ?? res?.signal ?? '?'} on SIGTERM: ${res?.stderr.slice(-500) ?? ''}`,
          );
      }),
    );
    await Promise.all(exits);
    if (aborted()) problems.push('stopped early');

    const report = await tenant.report({ storageDir, statePath: db.url, channels });
    const faults = tenant.faults();
    const results = evaluateInvariants(report);
    const unexpectedExits = processes.filter((p) => p.sent === null && p.endedAtMs !== null);
    for (const p of unexpectedExits) {
      findings.push(
        `slot ${p.slot}.${p.generation} (pid ${p.pid ?? '?'}) exited by itself with ${p.code ?? p.signal ?? '?'} at ${p.endedAtMs ?? '?'} ms${p.nearPostgresRestart ? ', during/just after the PostgreSQL restart' : ''}; stderr tail:\n${p.stderrTail.slice(-800)}`,
      );
    }
    const calls = tenant.calls();
    const durationMs = Date.now() - started;
    const pass = problems.length === 0 && results.every((r) => r.pass);
    const restart = pgRestart.result;
    const pgLine = restart
      ? `PostgreSQL restarted at ${restart.atMs} ms (backlog ${restart.backlogBefore ?? '?'}), back after ${restart.downMs} ms`
      : 'PostgreSQL not restarted';
    const text = [
      formatInvariants(report, results),
      `${tenant.dialect}: processes ${slots}, kills landed ${killsLanded}/${options.kills}, restarts ${restarts}, exited by themselves ${unexpectedExits.length}, settled at ${settledAtMs === null ? 'never' : `${(settledAtMs / 1000).toFixed(1)} s`}, soak ${(durationMs / 1000).toFixed(1)} s`,
      pgLine,
      `exits: ${exitSummary(processes)}`,
      `faults injected ${JSON.stringify(faults)}`,
      `calls ${JSON.stringify(calls)}`,
      ...tenant.statsLines(),
      ...problems.map((p) => `problem: ${p}`),
      ...findings.map((f) => `finding: ${f}`),
    ].join('\n');
    return {
      report,
      results,
      pass,
      problems,
      findings,
      processes,
      killsLanded,
      unexpectedExits,
      restarts,
      postgresRestart: restart,
      settledAtMs,
      durationMs,
      faultsInjected: faults,
      calls,
      text,
    };
  } finally {
    fleet.supervising = false;
    options.signal?.removeEventListener('abort', onAbort);
    for (const run of live) run?.child.kill('SIGKILL');
    await Promise.all(exits);
    // Whatever happened (a Ctrl-C during the restart, a failed restart), leave the machine's PostgreSQL running.
    if (!(await pgReady())) {
      await pgCtl('start');
      await waitPgReady(60_000);
    }
    await tenant.stop();
    if (db) {
      for (let i = 0; i < 5; i++) {
        try {
          await db.drop();
          break;
        } catch {
          await sleep(1000);
        }
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** `SIGKILL×10, SIGTERM→0×3, 1×2`: how the processes ended, grouped. */
function exitSummary(processes: readonly RunProcess[]): string {
  const groups = new Map<string, number>();
  for (const p of processes) {
    const how =
      p.endedAtMs === null
        ? 'still running'
        : p.sent === 'SIGKILL'
          ? 'SIGKILLed'
          : `${p.sent === 'SIGTERM' ? 'SIGTERM → ' : 'by itself → '}${p.code ?? p.signal ?? '?'}`;
    groups.set(how, (groups.get(how) ?? 0) + 1);
  }
  return [...groups].map(([how, n]) => `${how} ×${n}`).join(', ');
}
