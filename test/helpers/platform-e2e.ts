/**
 * What the platform e2e files share: the variables that point `cxrec` at a
 * platform simulator, and the one assertion that matters after every run —
 * the ledger and the stored bytes are what the simulator's truth says a
 * correct exporter ends with (`platform-invariants.ts`).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';

import type { PlatformSimulator } from '../../src/simulator/platform/index.js';
import type { JobRow } from '../../src/state/ledger.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import { evaluateInvariants, formatInvariants } from './invariants.js';
import { checkPlatformInvariants, playbackBudgetLine } from './platform-invariants.js';

/** Both budgets generous and equal on both sides, fast polling, warnings only. */
export function platformEnv(
  sim: PlatformSimulator,
  dir: string,
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  const key = sim.accessKey();
  const app = sim.applications[0]!;
  return {
    CXONE_AUTH_URL: sim.urls.issuer,
    CXONE_ACCESS_KEY_ID: key.id,
    CXONE_ACCESS_KEY_SECRET: key.secret,
    CXONE_CLIENT_ID: app.id,
    CXONE_CLIENT_SECRET: app.secret,
    CXREC_RATE_LIMIT: '1200',
    CXREC_PLAYBACK_LIMIT: '600',
    CXREC_PLAYBACK_WINDOW_SECONDS: '60',
    CXREC_POLL_SECONDS: '0.05',
    CXREC_BACKOFF_SECONDS: '0.02',
    CXREC_MAX_PROCESSING_MINUTES: '0.1',
    CXREC_STORAGE: join(dir, 'store'),
    CXREC_STATE: join(dir, 'state.db'),
    CXREC_LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Asserts every invariant (nothing lost, corrupt, duplicated, partial, wrongly settled, over a budget) for the window. */
export async function assertPlatformInvariants(
  sim: PlatformSimulator,
  where: { storageDir: string; statePath: string; since?: string; until?: string },
  context = '',
  limits: Parameters<typeof evaluateInvariants>[1] = {},
): Promise<void> {
  const stats = sim.stats();
  const report = await checkPlatformInvariants({ truth: await sim.truth(), stats, ...where });
  const results = evaluateInvariants(report, limits);
  const text = `${formatInvariants(report, results)}\n${playbackBudgetLine(stats)}\n${context}`;
  for (const r of results) assert.ok(r.pass, `${r.name}: ${r.measured} (target ${r.target})\n${text}`);
  assert.equal(report.unknownRows.length, 0, text);
  assert.ok(report.rowsChecked > 0, text);
}

export async function ledgerRows(statePath: string): Promise<Map<string, JobRow>> {
  const ledger = await openLedger(parseStateTarget(statePath));
  try {
    return new Map((await ledger.list({})).map((r) => [r.recordingId, r]));
  } finally {
    await ledger.close();
  }
}

/** Resolves once `check` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
