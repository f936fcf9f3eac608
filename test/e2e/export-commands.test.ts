/**
 * The operator's commands around `export`, end to end against the
 * simulators: `export --dry-run` (both dialects: listing calls only, no
 * ledger), `export --ids/--direction` (only the selection reaches the
 * ledger, and the ledger records the export), and `retry` (failed rows go
 * back to work and the next export fetches them).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { parseStateTarget } from '../../src/config.js';
import { startSimulator, type Simulator, type TruthRecording } from '../../src/simulator/index.js';
import { startPlatformSimulator, type PlatformSimulator } from '../../src/simulator/platform/index.js';
import { openLedger } from '../../src/state/open-state.js';
import { platformEnv } from '../helpers/platform-e2e.js';
import { runCli } from '../helpers/run-cli.js';

/** `  status Available: 12` lines of a dry run, as a map. */
function printedStatuses(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stdout.matchAll(/^ {2}status (\S+): (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

function printed(stdout: string, label: string): number {
  const m = new RegExp(`^\\s*${label}: (\\d+)`, 'm').exec(stdout);
  assert.ok(m, `"${label}" in\n${stdout}`);
  return Number(m[1]);
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

describe('export --dry-run, selection and retry (recording-api)', () => {
  let sim: Simulator;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let since: string;
  let statePath: string;

  before(async () => {
    sim = await startSimulator({
      recordings: 24,
      seed: 23,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      media: { minBytes: 2048, maxBytes: 16 * 1024 },
      listingInserts: false,
      mix: {
        stillProcessing: 0,
        failed: 0,
        purged: 0,
        neverCaptured: 0,
        lateIndexed: 0,
        hostileIds: 0,
      },
      // Statuses that do not move while the test runs: failed for good, processing for years.
      extraRecordings: [
        { status: 'Failed' },
        { status: 'Failed' },
        ...[1, 2, 3].map(() => ({
          status: 'Processing' as const,
          processingMs: 1e15,
          // Recent: older ones would be past CXREC_MAX_PROCESSING_MINUTES, given up at once.
          createdDate: new Date(Date.now() - 60_000),
        })),
      ],
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-commands-'));
    since = (await sim.truth()).createdFrom;
    statePath = join(dir, 'state.db');
    env = {
      CXREC_RATE_LIMIT: '1200',
      CXREC_POLL_SECONDS: '0.05',
      CXREC_BACKOFF_SECONDS: '0.02',
      CXREC_LOG_LEVEL: 'warn',
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
      CXREC_STORAGE: join(dir, 'store'),
      CXREC_STATE: statePath,
    };
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a dry run lists only, creates no ledger, and prints what the truth holds', async () => {
    sim.resetStats();
    const res = await runCli(['export', '--dry-run', '--since', since], env);
    assert.equal(res.code, 0, res.stderr);
    const stats = sim.stats();
    assert.equal(stats.calls.download.total, 0, 'no download-URL call');
    assert.equal(stats.calls.detail.total, 0, 'no detail call');
    assert.equal(stats.calls.media.total, 0, 'no media request');
    assert.equal(stats.media.bytesServed, 0);
    assert.ok(stats.calls.search.total >= 1);
    assert.equal(existsSync(statePath), false, 'the ledger file was not created');
    assert.equal(existsSync(join(dir, 'store')), false, 'nothing stored');

    const now = new Date().toISOString();
    const listed = (await sim.truth()).recordings.filter((r) => r.createdDate >= since && r.indexedAt <= now);
    assert.equal(printed(res.stdout, 'recordings listed'), listed.length);
    assert.deepEqual(
      printedStatuses(res.stdout),
      countBy(listed, (r) => r.status),
    );
    assert.equal(printed(res.stdout, 'fetch now'), listed.filter((r) => r.status === 'Available').length);
    assert.equal(printed(res.stdout, 'fetch once processed'), 3);
    assert.match(res.stdout, /settle failed_processing without fetching \(transcoding failed\): 2/);
    assert.match(res.stdout, /estimated size: about .* from \d+ s of call time/);
    assert.match(res.stdout, /API budget: about \d+ calls .* at CXREC_RATE_LIMIT 1200\/min/);
  });

  test('a dry run refuses a future --until (2) and a wrong secret (3), like export', async () => {
    const future = await runCli(['export', '--dry-run', '--since', since, '--until', '2999-01-01'], env);
    assert.equal(future.code, 2, future.stderr);
    assert.match(future.stderr, /--until .* is in the future/);
    const wrong = await runCli(['export', '--dry-run', '--since', since], {
      ...env,
      CXONE_CLIENT_SECRET: 'not-the-secret',
    });
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.ok(!wrong.stderr.includes('not-the-secret'));
    assert.equal(existsSync(statePath), false);
  });

  test('--ids and --direction: only the selection reaches the ledger; retry and the next export fetch the failed ones', async () => {
    const truth = await sim.truth();
    const available = truth.recordings.filter((r) => r.status === 'Available');
    const byDirection = (d: string): TruthRecording[] => available.filter((r) => r.direction === d);
    const inbound = byDirection('inbound');
    const outbound = byDirection('outbound');
    assert.ok(inbound.length >= 3 && outbound.length >= 1, 'the seed gives both directions');
    // Two by recording id, one by contact id, one outbound (left out by --direction), one unknown.
    const [a, b, c] = inbound;
    const idsFile = join(dir, 'ids.txt');
    await writeFile(
      idsFile,
      [
        '# the calls QA asked for',
        a!.recordingId,
        '',
        `  ${b!.recordingId}  `,
        c!.contactId,
        outbound[0]!.recordingId,
        'no-such-recording',
      ].join('\n'),
    );
    const selected = new Set([a!.recordingId, b!.recordingId, c!.recordingId]);
    const selectArgs = ['--since', since, '--ids', idsFile, '--direction', 'inbound'];

    // Media on a host CXREC_MEDIA_HOSTS does not allow: every selected recording ends failed.
    const refused = await runCli(['export', ...selectArgs], {
      ...env,
      CXREC_MEDIA_HOSTS: 'media.example.com',
    });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stdout,
      new RegExp(
        `2 of the 5 ids in .*ids\\.txt matched no selected recording .*"${outbound[0]!.recordingId}", "no-such-recording"`,
      ),
    );

    const ledger = await openLedger(parseStateTarget(statePath));
    try {
      const rows = await ledger.list({});
      assert.deepEqual(
        rows.map((r) => r.recordingId).sort(),
        [...selected].sort(),
        'recordings outside the selection are not written',
      );
      assert.ok(rows.every((r) => r.state === 'failed'));
      const [record] = await ledger.listExports(10);
      assert.ok(record);
      assert.equal(record.exitCode, 1);
      assert.equal(record.since, new Date(since).toISOString());
      assert.equal(record.dialect, 'recording-api');
      assert.ok(record.endedAt !== null && record.endedAt >= record.startedAt);
      assert.deepEqual(JSON.parse(record.selection ?? 'null'), {
        ids: { file: idsFile, count: 5 },
        direction: ['inbound'],
      });
      assert.equal(record.counts?.failed, 3);
    } finally {
      await ledger.close();
    }

    const stored = await runCli(['retry', '--state', 'stored'], env);
    assert.equal(stored.code, 2, stored.stderr);
    assert.match(stored.stderr, /cannot retry rows in state "stored"/);

    const retried = await runCli(['retry', '--reason', 'media_hosts', '--since', since], env);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(
      retried.stdout,
      /^3 rows put back to pending \(state failed, reason containing "media_hosts"/,
    );

    sim.resetStats();
    const again = await runCli(['export', ...selectArgs], env);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(sim.stats().calls.download.total, 3, 'exactly the retried recordings were fetched');
    const after = await openLedger(parseStateTarget(statePath));
    try {
      const rows = await after.list({});
      assert.deepEqual(
        rows.map((r) => [r.recordingId, r.state]).sort(),
        [...selected].sort().map((id) => [id, 'stored']),
      );
      const exports = await after.listExports(10);
      assert.deepEqual(
        exports.map((e) => e.exitCode),
        [0, 1],
        'both exports recorded, newest first',
      );
    } finally {
      await after.close();
    }
  });
});

describe('export --dry-run (platform)', () => {
  let sim: PlatformSimulator;
  let dir: string;

  before(async () => {
    sim = await startPlatformSimulator({
      recordings: 30,
      seed: 5,
      timeScale: 600,
      rateLimit: { requests: 1200, windowSeconds: 60 },
      playbackLimit: { requests: 600, windowSeconds: 60 },
      listingInserts: false,
      mix: { lateIndexed: 0, stillProcessing: 0, abandoned: 0.2 },
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-dry-platform-'));
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('lists contacts only: no playback, no media, no ledger; counts match the truth', async () => {
    const truth = await sim.truth();
    const env = platformEnv(sim, dir);
    const res = await runCli(['export', '--dry-run', '--since', truth.createdFrom], env);
    assert.equal(res.code, 0, res.stderr);
    const stats = sim.stats();
    assert.equal(stats.calls.playback.total, 0, 'no playback call');
    assert.equal(stats.media.bytesServed, 0);
    assert.ok(stats.calls['completed-contacts'].total >= 1);
    assert.equal(existsSync(join(dir, 'state.db')), false, 'the ledger file was not created');

    const now = new Date().toISOString();
    const masters = truth.masterContacts.filter(
      (m) => m.startDate >= truth.createdFrom && m.firstIndexedAt <= now,
    );
    const abandoned = masters.filter((m) => m.traits.includes('abandoned'));
    assert.ok(abandoned.length > 0, 'the seed gives abandoned calls');
    assert.equal(
      printed(res.stdout, 'contacts listed'),
      masters.reduce((n, m) => n + m.contactIds.length, 0),
    );
    assert.equal(printed(res.stdout, 'calls \\(master contacts\\)'), masters.length);
    assert.equal(printedStatuses(res.stdout).Abandoned, abandoned.length);
    assert.equal(printed(res.stdout, 'fetch now'), masters.length - abandoned.length);
    assert.match(res.stdout, new RegExp(`abandoned call: no recording\\): ${abandoned.length}`));
    assert.match(
      res.stdout,
      new RegExp(`playback budget: at least ${masters.length - abandoned.length} media-playback calls`),
    );
  });
});
