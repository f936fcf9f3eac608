/**
 * The ledger and its commands at 1 000 000 recordings (issue 13), SQLite
 * and PostgreSQL side by side. A ledger of 1 000 000 rows with a realistic
 * mix of states and reasons is synthesized in one statement (a recursive
 * CTE / generate_series; PostgreSQL in a throwaway database, dropped
 * after), then:
 *
 * - `status` and `status --json`: its code path (open, count, print) timed
 *   in-process (≤ 1 s), the built CLI's wall time beside it;
 * - `manifest`: the built CLI writing every stored row to a file, peak RSS
 *   of its process by /usr/bin/time (≤ 200 MB);
 * - claim latency p99 at 1 000 and at 1 000 000 rows (the second within 2×
 *   the first; claim 4, defer them back due, 300 rounds);
 * - discovery of a 200 000-recording window into the million-row ledger
 *   (bench/scale-discover.ts, a synthetic listing, see there), peak RSS of
 *   its process (≤ 300 MB);
 * - `/metrics`: the SQL statements one scrape issues, counted at the driver,
 *   the same at 1 000 and 1 000 000 rows.
 *
 * BENCH_QUICK=1 uses 100 000 rows instead of a million.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import Database from 'better-sqlite3';
import pg from 'pg';

import { parseStateTarget } from '../src/config.js';
import { createServiceMetrics } from '../src/service/metrics.js';
import type { Ledger } from '../src/state/ledger.js';
import { openLedger } from '../src/state/open-state.js';
import { migratePostgres, openPostgresPool, PostgresLedger } from '../src/state/postgres.js';
import { openSqliteDatabase, SqliteLedger } from '../src/state/sqlite.js';
import type { Benchmark, BenchResult } from './types.js';

const run = promisify(execFile);
const big = process.env.BENCH_QUICK === '1' ? 100_000 : 1_000_000;
const small = 1_000;
const windowRecordings = process.env.BENCH_QUICK === '1' ? 20_000 : 200_000;
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const discoverChild = fileURLToPath(new URL('./scale-discover.ts', import.meta.url));
const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

/**
 * The mix, per 1 000 rows: 800 stored, 50 pending (due), 20 waiting, 1
 * downloading (live lease), 29 media_unavailable, 30 failed_processing,
 * 30 out_of_retention, 20 purged, 20 failed with an error. Rows are 10 s
 * apart from 2024-01-01 (a million span 116 days).
 */
interface Dialect {
  rowId: string;
  createdDate: string;
  hex32: string;
  hex64: string;
  series: (sql: string) => string;
}

const sqliteDialect: Dialect = {
  rowId: "printf('scale-%07d', i)",
  createdDate: "strftime('%Y-%m-%dT%H:%M:%SZ', 1704067200 + i * 10, 'unixepoch')",
  hex32: "printf('%032x', i)",
  hex64: "printf('%064x', i)",
  series: (select) =>
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < @rows) ${select} FROM n`,
};
const postgresDialect: Dialect = {
  rowId: "'scale-' || lpad(i::text, 7, '0')",
  createdDate: `to_char(to_timestamp(1704067200 + i * 10) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`,
  hex32: "lpad(to_hex(i), 32, '0')",
  hex64: "lpad(to_hex(i), 64, '0')",
  series: (select) => `${select} FROM generate_series(0, $1::int - 1) AS n(i)`,
};

function synthesizeSql(d: Dialect, now: number): string {
  const k = '(i % 1000)';
  const state = `CASE
    WHEN ${k} < 800 THEN 'stored' WHEN ${k} < 850 THEN 'pending' WHEN ${k} < 870 THEN 'waiting'
    WHEN ${k} < 871 THEN 'downloading' WHEN ${k} < 900 THEN 'media_unavailable'
    WHEN ${k} < 930 THEN 'failed_processing' WHEN ${k} < 960 THEN 'out_of_retention'
    WHEN ${k} < 980 THEN 'purged' ELSE 'failed' END`;
  const reason = `CASE
    WHEN ${k} < 871 THEN NULL
    WHEN ${k} < 890 THEN 'no audio (44 bytes)' WHEN ${k} < 900 THEN 'fell back to combined'
    WHEN ${k} < 930 THEN 'transcoding failed' WHEN ${k} < 960 THEN 'older than 70 % of retention'
    WHEN ${k} < 980 THEN 'media gone by retention'
    WHEN ${k} < 990 THEN 'gave up after 6 attempts: network' ELSE 'media_host_refused' END`;
  const stored = (expr: string) => `CASE WHEN ${k} < 800 THEN ${expr} ELSE NULL END`;
  const failed = (expr: string) => `CASE WHEN ${k} >= 980 THEN ${expr} ELSE NULL END`;
  return d.series(`INSERT INTO jobs (
      recording_id, channel, state, reason, contact_id, status, created_date, duration_seconds,
      direction, agent_id, skill_name, attempts, next_run_at, first_seen_at, lease_owner, lease_expires_at,
      last_error_code, last_error_message, last_error_at,
      stored_key, stored_size_bytes, stored_md5, stored_sha256, stored_content_type, stored_at, updated_at)
    SELECT ${d.rowId}, 'combined', ${state}, ${reason}, 'contact-' || i,
      CASE WHEN ${k} BETWEEN 850 AND 869 THEN 'Processing' ELSE 'Available' END,
      ${d.createdDate}, 30 + i % 600, CASE WHEN i % 2 = 0 THEN 'Inbound' ELSE 'Outbound' END,
      'agent-' || (i % 50), 'Support', CASE WHEN ${k} >= 980 THEN 6 ELSE 0 END,
      ${now} - ${k}, ${now}, CASE WHEN ${k} = 870 THEN 'bench:1' ELSE NULL END,
      CASE WHEN ${k} = 870 THEN ${now + 3_600_000} ELSE NULL END,
      ${failed("'network'")}, ${failed("'connection reset'")}, ${failed(`${now} - i`)},
      ${stored(`'recordings/' || ${d.rowId} || '_combined.wav'`)}, ${stored('100000 + i % 900000')},
      ${stored(d.hex32)}, ${stored(d.hex64)}, ${stored("'audio/wav'")}, ${stored(String(now))}, ${now}`);
}

interface Backend {
  name: 'sqlite' | 'postgres';
  /** CXREC_STATE for the CLI and the discovery child. */
  state: string;
  /** A ledger whose driver counts the statements it runs. */
  ledger: Ledger;
  statements: () => number;
  close(): Promise<void>;
}

function sqliteBackend(dir: string, rows: number): Backend {
  const path = join(dir, `ledger-${rows}.db`);
  const { db, location } = openSqliteDatabase(path);
  db.transaction(() => db.prepare(synthesizeSql(sqliteDialect, Date.now())).run({ rows }))();
  let statements = 0;
  // Count every execution of every statement the ledger prepares from here on.
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const st = prepare(sql);
    for (const m of ['run', 'get', 'all', 'iterate'] as const) {
      const original = st[m].bind(st) as (...args: unknown[]) => unknown;
      (st as unknown as Record<string, unknown>)[m] = (...args: unknown[]) => {
        statements++;
        return original(...args);
      };
    }
    return st;
  }) as Database.Database['prepare'];
  const ledger = new SqliteLedger(db, location);
  return { name: 'sqlite', state: path, ledger, statements: () => statements, close: () => ledger.close() };
}

async function postgresBackend(adminUrl: string, rows: number): Promise<Backend> {
  const name = `cxrec_bench_scale_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = openPostgresPool(url.toString(), 10);
  try {
    await migratePostgres(pool, name);
    await pool.query(synthesizeSql(postgresDialect, Date.now()), [rows]);
    // What autovacuum does after a bulk load: statistics and the visibility map.
    await pool.query('VACUUM ANALYZE jobs');
  } catch (err) {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    throw err;
  }
  let statements = 0;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    statements++;
    return query(...args);
  };
  const ledger = new PostgresLedger(pool, name);
  return {
    name: 'postgres',
    state: url.toString(),
    ledger,
    statements: () => statements,
    async close() {
      await ledger.close();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

const cliEnv = (state: string): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  CXREC_STATE: state,
  CXONE_DIALECT: 'recording-api',
  CXONE_API_URL: 'http://127.0.0.1:9',
  CXONE_CLIENT_ID: 'bench',
  CXONE_CLIENT_SECRET: 'bench-secret',
  CXREC_LOG_LEVEL: 'warn',
});

/** Runs a process under /usr/bin/time: its wall seconds, peak RSS (kB) and stdout. */
async function timed(
  argv: string[],
  env: NodeJS.ProcessEnv,
  dir: string,
): Promise<{ seconds: number; peakKb: number; stdout: string }> {
  const out = join(dir, `time-${randomBytes(3).toString('hex')}.txt`);
  const started = performance.now();
  const { stdout } = await run('/usr/bin/time', ['-f', '%M', '-o', out, ...argv], {
    env,
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = (performance.now() - started) / 1000;
  const peakKb = Number((await readFile(out, 'utf8')).trim().split('\n').at(-1));
  return { seconds, peakKb, stdout };
}

/** p99 of 300 claims of 4 rows, each put back due at once. */
async function claimP99(ledger: Ledger): Promise<number> {
  const times: number[] = [];
  for (let round = 0; round < 300; round++) {
    const now = Date.now();
    const started = performance.now();
    const rows = await ledger.claim({ owner: 'bench', limit: 4, leaseMs: 60_000, now });
    times.push(performance.now() - started);
    if (rows.length === 0) throw new Error('nothing to claim');
    for (const r of rows)
      await ledger.defer(r, 'bench', { state: 'pending', nextRunAt: now, countAttempt: false });
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length * 0.99) - 1] ?? NaN;
}

/** SQL statements one /metrics scrape issues, and its time. */
async function scrape(b: Backend): Promise<{ statements: number; ms: number }> {
  const metrics = createServiceMetrics({
    ledger: b.ledger,
    apiStats: () => undefined,
    retentionDays: 365,
    now: () => Date.now(),
  });
  const before = b.statements();
  const started = performance.now();
  await metrics.registry.metrics();
  return { statements: b.statements() - before, ms: performance.now() - started };
}

async function measureBackend(
  open: (rows: number) => Promise<Backend>,
  dir: string,
  label: string,
): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const smallB = await open(small);
  let smallClaim: number;
  let smallScrape: { statements: number; ms: number };
  try {
    smallClaim = await claimP99(smallB.ledger);
    smallScrape = await scrape(smallB);
  } finally {
    await smallB.close();
  }
  const loadStarted = performance.now();
  const b = await open(big);
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  const rowsText = big.toLocaleString('en');
  try {
    const env = cliEnv(b.state);
    // The CLI's wall time is mostly Node starting (seconds when the shared machine is loaded):
    // the figure is status's own code path, open + counts + print, timed in-process; the CLI's
    // wall time on this ledger and on an empty one are reported beside it.
    const empty = await timed([process.execPath, cli, 'status'], cliEnv(join(dir, 'empty.db')), dir);
    for (const args of [['status'], ['status', '--json']]) {
      const started = performance.now();
      const ledger = await openLedger(parseStateTarget(b.state));
      let text: string;
      try {
        const counts = await ledger.counts();
        text = JSON.stringify({ ledger: ledger.location, ...counts }, null, args.length === 2 ? 2 : 0);
      } finally {
        await ledger.close();
      }
      const seconds = (performance.now() - started) / 1000;
      const r = await timed([process.execPath, cli, ...args], env, dir);
      results.push({
        figure: `scale (${label}): cxrec ${args.join(' ')} on ${rowsText} rows (open, count, print)`,
        target: '≤ 1 s',
        measured: `${seconds.toFixed(2)} s (whole CLI ${r.seconds.toFixed(2)} s; on an empty ledger ${empty.seconds.toFixed(2)} s)`,
        pass: seconds <= 1 && text.length > 0,
        details: { seconds, cliSeconds: r.seconds, cliEmptySeconds: empty.seconds, loadSeconds },
      });
      if (args.length === 2) {
        const counts = JSON.parse(r.stdout) as { byState: Record<string, number> };
        const total = Object.values(counts.byState).reduce((a, n) => a + n, 0);
        if (total !== big) throw new Error(`status counted ${total} rows, not ${big}`);
      }
    }
    const manifestFile = join(dir, `manifest-${label}.jsonl`);
    const m = await timed([process.execPath, cli, 'manifest', '--output', manifestFile], env, dir);
    const size = (await stat(manifestFile)).size;
    const lines = (await readFile(manifestFile, 'utf8')).split('\n').length - 1;
    await rm(manifestFile);
    results.push({
      figure: `scale (${label}): cxrec manifest of ${lines.toLocaleString('en')} stored rows, peak RSS`,
      target: '≤ 200 MB',
      measured: `${mb(m.peakKb)} (${m.seconds.toFixed(1)} s)`,
      pass: m.peakKb <= 200 * 1024 && lines === big * 0.8,
      details: { peakKb: m.peakKb, seconds: m.seconds, lines, bytes: size },
    });
    const bigClaim = await claimP99(b.ledger);
    results.push({
      figure: `scale (${label}): claim p99 at ${rowsText} rows / at ${small.toLocaleString('en')}`,
      target: '≤ 2×',
      measured: `${(bigClaim / smallClaim).toFixed(2)}× (${bigClaim.toFixed(2)} ms vs ${smallClaim.toFixed(2)} ms)`,
      pass: bigClaim <= 2 * smallClaim,
      details: { p99BigMs: bigClaim, p99SmallMs: smallClaim },
    });
    const bigScrape = await scrape(b);
    results.push({
      figure: `scale (${label}): /metrics SQL statements per scrape, ${rowsText} rows vs ${small.toLocaleString('en')}`,
      target: 'equal',
      measured: `${bigScrape.statements} vs ${smallScrape.statements} (${bigScrape.ms.toFixed(0)} ms a scrape)`,
      pass: bigScrape.statements === smallScrape.statements,
      details: { big: bigScrape, small: smallScrape },
    });
    const d = await timed(
      [process.execPath, '--import', 'tsx', discoverChild, b.state, String(windowRecordings)],
      { ...process.env },
      dir,
    );
    const found = JSON.parse(d.stdout) as { listed: number; inserted: number; seconds: number };
    results.push({
      figure: `scale (${label}): discovery of a ${windowRecordings.toLocaleString('en')}-recording window into ${rowsText} rows (synthetic listing), peak RSS`,
      target: '≤ 300 MB',
      measured: `${mb(d.peakKb)} (${found.seconds.toFixed(1)} s)`,
      pass: d.peakKb <= 300 * 1024 && found.inserted === windowRecordings,
      details: { peakKb: d.peakKb, ...found },
    });
  } finally {
    await b.close();
  }
  return results;
}

export const benchmark: Benchmark = {
  name: 'scale',
  async run() {
    const load = loadavg()[0] ?? 0;
    const results: BenchResult[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-scale-'));
    try {
      results.push(
        ...(await measureBackend((rows) => Promise.resolve(sqliteBackend(dir, rows)), dir, 'sqlite')),
      );
      const adminUrl = process.env.CXREC_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
      results.push(...(await measureBackend((rows) => postgresBackend(adminUrl, rows), dir, 'postgres')));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    results.push({
      figure: 'scale: load average (1 min) when the scale figures were taken (2 cores, shared)',
      target: 'report',
      measured: `${load.toFixed(1)} at start, ${(loadavg()[0] ?? 0).toFixed(1)} at end`,
      pass: undefined,
    });
    return results;
  },
};
