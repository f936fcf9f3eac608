import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import Database from 'better-sqlite3';

import { MinuteCounter, readStatusModel } from '../../../src/service/status-data.js';
import {
  escapeHtml,
  renderStatusPage,
  type ExportWindowView,
  type StatusPageModel,
} from '../../../src/service/status-page.js';
import type { JobRow } from '../../../src/state/ledger.js';
import { openSqliteLedger } from '../../../src/state/sqlite.js';

const hostile = `"><img src=x onerror=alert(1)><script>alert('id')</script>`;
const presigned = 'https://bucket.s3.amazonaws.com/a.wav?X-Amz-Signature=deadbeefcafe&X-Amz-Expires=300';
const NOW = Date.parse('2026-12-02T08:00:30Z');

function row(overrides: Partial<JobRow>): JobRow {
  return {
    recordingId: 'r1',
    channel: 'combined',
    state: 'failed',
    reason: 'gave up after 6 attempts: network',
    meta: { recordingId: 'r1', status: 'Available', createdDate: '2026-12-01T00:00:00Z' },
    attempts: 6,
    nextRunAt: 0,
    firstSeenAt: 0,
    leaseOwner: null,
    leaseExpiresAt: null,
    lastErrorCode: 'network',
    lastErrorMessage: null,
    uploadToken: null,
    uploadBytes: null,
    stored: null,
    updatedAt: NOW,
    ...overrides,
  };
}

function model(overrides: Partial<StatusPageModel> = {}): StatusPageModel {
  const counts = new Array<number>(60).fill(0);
  counts[59] = 7;
  return {
    mode: 'ui',
    generatedAt: NOW,
    ledgerLocation: 'postgres://cxrec:hunter2@db.example.com/cxrec?password=hunter2',
    counts: {
      byState: { stored: 12, failed: 2, pending: 3 },
      byReason: { failed: { [hostile]: 1, 'gave up after 6 attempts: network': 1 } },
      backlog: 3,
      oldestBacklogCreatedDate: '2026-12-01T00:00:00Z',
      lastError: {
        recordingId: hostile,
        channel: 'combined',
        code: 'network',
        message: presigned,
        detail: null,
        at: NOW,
      },
      storedBytes: 5 * 1024 * 1024,
    },
    backlogByAge: [
      { label: 'under 1 hour', count: 1 },
      { label: '1 to 6 hours', count: 2 },
    ],
    storedPerMinute: { startMs: NOW - 59 * 60_000, counts },
    apiBudget: { limitPerMinute: 50, perMinute: { startMs: NOW - 59 * 60_000, counts }, source: 'test' },
    recentFailures: [
      row({
        recordingId: hostile,
        reason: `refused ${presigned}`,
        lastErrorMessage: `GET ${presigned} failed`,
      }),
    ],
    exports: [],
    ...overrides,
  };
}

describe('the status page', () => {
  test('every ledger string is escaped: a hostile id never becomes markup', () => {
    const html = renderStatusPage(
      model({
        search: {
          query: hostile,
          rows: [row({ recordingId: hostile, meta: { ...row({}).meta, contactId: hostile } })],
          limit: 50,
        },
        exports: [
          {
            id: 1,
            startedAt: NOW,
            endedAt: null,
            since: hostile,
            until: hostile,
            selection: hostile,
            exitCode: null,
          },
        ],
      }),
    );
    assert.ok(!html.includes('<img'), 'no injected element');
    assert.ok(!html.includes("<script>alert('id')"), 'no injected script');
    assert.ok(html.includes(escapeHtml(hostile)));
    // Only the page's own scripts: the JSON data block and two files from cxrec itself.
    assert.deepEqual(html.match(/<script[^>]*>/g), [
      '<script type="application/json" id="chart-data">',
      '<script src="/assets/uPlot.iife.min.js">',
      '<script src="/assets/status-charts.js">',
    ]);
  });

  test('no secret: presigned signatures and database passwords are scrubbed', () => {
    const html = renderStatusPage(model());
    assert.ok(!html.includes('deadbeefcafe'), 'no presigned signature');
    assert.ok(!html.includes('hunter2'), 'no database password');
    assert.ok(html.includes('db.example.com'), 'the ledger is still named');
  });

  test('counts by state and reason, backlog by age and the hour are in tables (readable without JavaScript)', () => {
    const html = renderStatusPage(model());
    assert.match(html, /data-state="stored">12</);
    assert.match(html, /data-state="failed">2</);
    assert.match(html, /data-state="waiting">0</);
    assert.match(html, /gave up after 6 attempts: network<\/td><td class="n">1</);
    assert.match(html, /<td>1 to 6 hours<\/td><td class="n">2<\/td>/);
    assert.match(html, /id="backlog">3</);
    assert.match(html, /5\.0 MiB/);
    assert.match(html, /<td>08:00<\/td><td class="n">7<\/td>/);
    assert.match(html, /busiest 7 of 50/);
  });

  test('the window each export covered, from the rows given', () => {
    const exports: ExportWindowView[] = [
      {
        id: 2,
        startedAt: '2026-12-02T07:00:00Z',
        endedAt: null,
        since: '2026-11-01T00:00:00Z',
        until: '2026-12-01T00:00:00Z',
        selection: 'ids file (12 ids)',
        exitCode: null,
      },
      {
        id: 1,
        startedAt: Date.parse('2026-12-01T07:00:00Z'),
        endedAt: Date.parse('2026-12-01T07:30:00Z'),
        since: '2026-10-01T00:00:00Z',
        until: '2026-11-01T00:00:00Z',
        selection: null,
        exitCode: 1,
      },
    ];
    const html = renderStatusPage(model({ exports }));
    const table = html.slice(
      html.indexOf('id="export-windows"'),
      html.indexOf('</table>', html.indexOf('id="export-windows"')),
    );
    const rows = table.split('<tr>').slice(2);
    assert.equal(rows.length, 2);
    assert.match(
      rows[0]!,
      /running or stopped.*2026-11-01T00:00:00Z.*2026-12-01T00:00:00Z.*ids file \(12 ids\)/,
    );
    assert.match(
      rows[1]!,
      /2026-12-01T07:00:00Z.*2026-12-01T07:30:00Z.*the whole window.*<td class="n">1<\/td>/,
    );
    assert.match(renderStatusPage(model()), /no export recorded/);
  });
});

describe('readStatusModel', () => {
  test('reads the ledger: backlog buckets, the hour per minute, failures and the grant log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-status-'));
    const path = join(dir, 'ledger.db');
    const ledger = await openSqliteLedger(path);
    try {
      const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19) + 'Z';
      const pending = (id: string, ageMs: number) => ({
        recordingId: id,
        channel: 'combined' as const,
        state: 'pending' as const,
        nextRunAt: NOW + 1e9,
        meta: { recordingId: id, status: 'Available', createdDate: iso(NOW - ageMs) },
      });
      await ledger.upsertDiscovered([
        pending('young', 60_000),
        pending('hours', 2 * 3_600_000),
        pending('days', 3 * 86_400_000),
        pending('old', 40 * 86_400_000),
        { ...pending('s1', 0), nextRunAt: 0 },
      ]);
      const [claimed] = await ledger.claim({ owner: 'w', limit: 1, leaseMs: 60_000, now: NOW });
      assert.equal(claimed?.recordingId, 's1');
      const stored = {
        key: 'recordings/s1_combined.wav',
        sizeBytes: 10,
        md5: 'x',
        sha256: 'y',
        contentType: 'audio/wav',
      };
      assert.ok(
        await ledger.finish({ recordingId: 's1', channel: 'combined' }, 'w', {
          state: 'stored',
          stored: { ...stored, storedAt: NOW - 120_000 },
        }),
      );
      const db = new Database(path);
      const insert = db.prepare('INSERT INTO rate_limit_log (acquired_at, done_at, budget) VALUES (?, ?, ?)');
      for (let i = 0; i < 4; i++) insert.run(NOW - 1000, NOW, 'api');
      insert.run(NOW - 1000, NOW, 'playback');
      insert.run(NOW - 2 * 3_600_000, NOW, 'api'); // older than the hour
      db.close();

      const m = await readStatusModel({ ledger, mode: 'ui', rateLimitPerMinute: 50, now: () => NOW });
      assert.deepEqual(
        m.backlogByAge.map((b) => b.count),
        [1, 1, 0, 1, 0, 1],
      );
      assert.equal(m.storedPerMinute.counts.length, 60);
      assert.equal(m.storedPerMinute.counts[57], 1);
      assert.equal(
        m.storedPerMinute.counts.reduce((a, b) => a + b, 0),
        1,
      );
      assert.equal(m.apiBudget.perMinute.counts[59], 4);
      assert.equal(
        m.apiBudget.perMinute.counts.reduce((a, b) => a + b, 0),
        4,
      );
      assert.match(m.apiBudget.source, /grant log/);
      assert.deepEqual(m.counts, await ledger.counts());

      const counter = new MinuteCounter();
      counter.add(NOW - 3_600_000); // out of the hour
      counter.add(NOW - 60_000, 3);
      counter.add(NOW);
      const own = await readStatusModel({
        ledger,
        mode: 'run',
        rateLimitPerMinute: 50,
        now: () => NOW,
        processApiGrants: (now) => counter.lastHour(now),
      });
      assert.deepEqual(own.apiBudget.perMinute.counts.slice(57), [0, 3, 1]);
      assert.equal(
        own.apiBudget.perMinute.counts.reduce((a, b) => a + b, 0),
        4,
      );

      // The windows export covered come from the ledger's exports table, newest first.
      assert.deepEqual(m.exports, []);
      const since = '2026-12-01T00:00:00.000Z';
      const until = '2026-12-02T00:00:00.000Z';
      const first = await ledger.startExport({
        startedAt: NOW - 60_000,
        since,
        until,
        selection: null,
        dialect: 'recording-api',
      });
      await ledger.finishExport(first, { endedAt: NOW - 30_000, exitCode: 0, counts: { stored: 1 } });
      await ledger.startExport({
        startedAt: NOW,
        since,
        until,
        selection: '{"direction":"inbound"}',
        dialect: 'recording-api',
      });
      const withExports = await readStatusModel({
        ledger,
        mode: 'ui',
        rateLimitPerMinute: 50,
        now: () => NOW,
      });
      assert.deepEqual(
        withExports.exports.map((e) => [e.selection, e.exitCode, e.endedAt === null]),
        [
          ['{"direction":"inbound"}', null, true],
          [null, 0, false],
        ],
      );
      assert.match(renderStatusPage(withExports), /inbound/);
    } finally {
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
