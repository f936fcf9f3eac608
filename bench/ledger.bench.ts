/**
 * 100 000 discovered rows inserted in one `upsertDiscovered` call: the
 * issue asks for "seconds, not minutes" (a large backfill's first listing);
 * we hold it to ≤ 10 s per backend. PostgreSQL runs in a throwaway
 * database on CXREC_BENCH_POSTGRES (default the local server) and is
 * reported as not measured when that server cannot be reached.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import type { DiscoveredJob, Ledger } from '../src/state/ledger.js';
import { openPostgresLedger } from '../src/state/postgres.js';
import { readStatusModel } from '../src/service/status-data.js';
import { openSqliteLedger } from '../src/state/sqlite.js';
import type { Benchmark, BenchResult } from './types.js';

const rows = 100_000;
const targetSeconds = 10;

function discovered(): DiscoveredJob[] {
  const now = Date.now();
  return Array.from({ length: rows }, (_, i) => {
    const recordingId = `bench-${String(i).padStart(7, '0')}`;
    return {
      recordingId,
      channel: 'combined',
      state: i % 10 === 0 ? 'waiting' : 'pending',
      nextRunAt: now + i,
      meta: {
        recordingId,
        contactId: `contact-${i}`,
        status: i % 10 === 0 ? 'Processing' : 'Available',
        createdDate: new Date(Date.UTC(2024, 4, 1) + i * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        durationSeconds: 30 + (i % 600),
        direction: i % 2 ? 'Inbound' : 'Outbound',
        agentId: `agent-${i % 50}`,
        skillName: 'Support',
      },
    };
  });
}

async function measure(backend: string, ledger: Ledger): Promise<BenchResult> {
  const jobs = discovered();
  const started = performance.now();
  const result = await ledger.upsertDiscovered(jobs);
  const seconds = (performance.now() - started) / 1000;
  // A second pass over the same rows is what every later listing does.
  const again = performance.now();
  await ledger.upsertDiscovered(jobs);
  const refreshSeconds = (performance.now() - again) / 1000;
  return {
    figure: `ledger: ${rows.toLocaleString('en')} discovered rows upserted (${backend})`,
    target: `≤ ${targetSeconds} s`,
    measured: `${seconds.toFixed(2)} s`,
    pass: seconds <= targetSeconds && result.inserted === rows,
    details: { backend, rows, seconds, inserted: result.inserted, refreshSeconds },
  };
}

/**
 * One status-page read (`counts` + `overview`, what a scrape or a page view
 * costs at most once per 5 s) and one search, on the 100 000 rows `measure`
 * left: the time the SQLite connection is busy, so lease renewals wait at
 * most that long for it. Reported only.
 */
async function measureStatusRead(ledger: Ledger): Promise<BenchResult> {
  const read = async (): Promise<number> => {
    const started = performance.now();
    await readStatusModel({ ledger, mode: 'ui', rateLimitPerMinute: 50, now: () => Date.now() });
    return performance.now() - started;
  };
  await read();
  const ms = Math.min(await read(), await read());
  const searchStarted = performance.now();
  await ledger.find('contact-99999', 50);
  const searchMs = performance.now() - searchStarted;
  return {
    figure: `status page: one ledger read on ${rows.toLocaleString('en')} rows (sqlite; at most one per 5 s)`,
    target: 'reported',
    measured: `${ms.toFixed(0)} ms (search by contact id ${searchMs.toFixed(0)} ms)`,
    pass: undefined,
    details: { rows, readMs: ms, searchMs },
  };
}

export const benchmark: Benchmark = {
  name: 'ledger',
  async run() {
    const results: BenchResult[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-ledger-'));
    try {
      const ledger = await openSqliteLedger(join(dir, 'state.db'));
      try {
        results.push(await measure('sqlite', ledger));
        results.push(await measureStatusRead(ledger));
      } finally {
        await ledger.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    results.push(await measurePostgres());
    return results;
  },
};

async function measurePostgres(): Promise<BenchResult> {
  const adminUrl = process.env.CXREC_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `cxrec_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (err) {
    await admin.end().catch(() => undefined);
    return {
      figure: `ledger: ${rows.toLocaleString('en')} discovered rows upserted (postgres)`,
      target: `≤ ${targetSeconds} s`,
      measured: `not measured: ${err instanceof Error ? err.message : String(err)}`,
      pass: undefined,
    };
  }
  try {
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const ledger = await openPostgresLedger(url.toString());
    try {
      return await measure('postgres', ledger);
    } finally {
      await ledger.close();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
