import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { CxrecError } from '../../../src/errors.js';
import { listForDryRun, noLedger, planDryRun } from '../../../src/pipeline/dry-run.js';
import type { ListedPage, RecordingSource } from '../../../src/pipeline/recording-source.js';
import { rootLogger } from '../../../src/log.js';
import { discoverWindow, recheckWaiting } from '../../../src/pipeline/discover.js';
import type { RecordingApi } from '../../../src/pipeline/recording-api.js';
import { recordingApiSource } from '../../../src/pipeline/recording-api-source.js';
import {
  describeSelection,
  idsNotFound,
  readIdsFile,
  selects,
  type Selection,
} from '../../../src/pipeline/selection.js';
import type { DiscoveredJob, RecordingMeta } from '../../../src/state/ledger.js';
import { openSqliteLedger } from '../../../src/state/sqlite.js';

const dir = await mkdtemp(join(tmpdir(), 'cxrec-selection-'));
after(() => rm(dir, { recursive: true, force: true }));

const apiMeta = (id: string, extra: Partial<RecordingMeta> = {}): RecordingMeta => ({
  recordingId: id,
  contactId: `c-${id}`,
  status: 'Available',
  createdDate: '2024-05-01T10:00:00Z',
  durationSeconds: 100,
  direction: 'inbound',
  agentId: '12345',
  skillName: 'Billing',
  ...extra,
});

const platformMeta: RecordingMeta = {
  recordingId: '900',
  contactId: '900',
  contactIds: ['900', '901', '902'],
  status: 'Completed',
  createdDate: '2024-05-01T10:00:00Z',
  direction: 'Outbound',
  agentId: '777',
  agentName: 'Ana Okafor',
  skillId: '4100211',
  skillName: 'Billing',
};

const job = (meta: RecordingMeta, extra: Partial<DiscoveredJob> = {}): DiscoveredJob => ({
  recordingId: meta.recordingId,
  channel: 'combined',
  meta,
  state: 'pending',
  nextRunAt: 0,
  ...extra,
});

describe('readIdsFile', () => {
  test('one id per line; blanks, comments and surrounding spaces ignored', async () => {
    const path = join(dir, 'ids.txt');
    await writeFile(path, '# QA sample\r\nabc\n\n   def  \n#ghi\nabc\n');
    const { file, values } = await readIdsFile(path);
    assert.equal(file, path);
    assert.deepEqual([...values], ['abc', 'def']);
  });

  test('a missing or empty file is a usage error naming it', async () => {
    const empty = join(dir, 'empty.txt');
    await writeFile(empty, '# nothing\n\n');
    for (const path of [join(dir, 'missing.txt'), empty]) {
      await assert.rejects(readIdsFile(path), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.exitCode, 2);
        assert.ok(err.message.includes(path), err.message);
        return true;
      });
    }
  });
});

describe('selects', () => {
  const ids = (...v: string[]): NonNullable<Selection['ids']> => ({ file: 'ids.txt', values: new Set(v) });

  test('ids match the recording, its contact, or (platform) any leg', () => {
    assert.ok(selects({ ids: ids('r1') }, apiMeta('r1')));
    assert.ok(selects({ ids: ids('c-r1') }, apiMeta('r1')));
    assert.ok(!selects({ ids: ids('r2') }, apiMeta('r1')));
    assert.ok(selects({ ids: ids('902') }, platformMeta));
    // A call's second interaction row keeps the master as its contact.
    assert.ok(selects({ ids: ids('900') }, { ...platformMeta, recordingId: '900-2' }));
  });

  test('agent by id (or platform name, any case), skill by name (any case) or platform id, direction any case', () => {
    assert.ok(selects({ agents: ['12345'] }, apiMeta('r1')));
    assert.ok(!selects({ agents: ['123'] }, apiMeta('r1')));
    assert.ok(selects({ agents: ['ana okafor'] }, platformMeta));
    assert.ok(selects({ skills: ['billing'] }, apiMeta('r1')));
    assert.ok(selects({ skills: ['4100211'] }, platformMeta));
    assert.ok(!selects({ skills: ['Sales'] }, platformMeta));
    assert.ok(selects({ directions: ['outbound'] }, platformMeta));
    assert.ok(!selects({ directions: ['outbound'] }, apiMeta('r1')));
    // Several values of one flag: any; several flags: all.
    assert.ok(selects({ agents: ['1', '12345'], directions: ['inbound'] }, apiMeta('r1')));
    assert.ok(!selects({ agents: ['12345'], directions: ['outbound'] }, apiMeta('r1')));
  });

  test('the selection as recorded, and the ids that matched nothing', () => {
    assert.equal(describeSelection({}), null);
    assert.deepEqual(JSON.parse(describeSelection({ ids: ids('a', 'b'), skills: ['Billing'] }) ?? ''), {
      ids: { file: 'ids.txt', count: 2 },
      skill: ['Billing'],
    });
    assert.deepEqual(idsNotFound({ ids: ids('r1', 'c-r2', 'zz') }, [apiMeta('r1'), apiMeta('r2')]), ['zz']);
  });
});

describe('a source with a selection', () => {
  test('admits only the selected recordings to the ledger, in listings and in late-indexed re-check finds', async () => {
    const ledger = await openSqliteLedger(':memory:');
    const rec = (id: string, direction: string, status: 'Available' | 'Processing') => ({
      recordingId: id,
      contactId: `c-${id}`,
      status,
      createdDate: new Date(Date.now() - 60_000).toISOString().slice(0, 19) + 'Z',
      direction,
    });
    let listings = 0;
    const api: RecordingApi = {
      // The first listing has one of each; a re-check finds two more, indexed late, still processing.
      async *list() {
        listings++;
        yield await Promise.resolve(
          listings === 1
            ? [rec('in', 'inbound', 'Processing'), rec('out', 'outbound', 'Available')]
            : [
                rec('in', 'inbound', 'Processing'),
                rec('late-in', 'inbound', 'Processing'),
                rec('late-out', 'outbound', 'Processing'),
              ],
        );
      },
      detail: () => Promise.reject(new Error('not used')),
      downloadUrl: () => Promise.reject(new Error('not used')),
    };
    try {
      let now = Date.now();
      const source = recordingApiSource({
        api,
        ledger,
        channels: ['combined'],
        channelFallback: 'combined',
        retentionDays: 90,
        pollSeconds: 1,
        maxProcessingMinutes: 240,
        log: rootLogger(),
        now: () => now,
        admit: (meta) => selects({ directions: ['inbound'] }, meta),
      });
      const ctx = { source, ledger, log: rootLogger(), now: () => now };
      const found = await discoverWindow(
        ctx,
        { from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' },
        new AbortController().signal,
      );
      assert.equal(found.listed, 2, 'the listing itself is whole');
      assert.equal(found.inserted, 1);
      now += 5000;
      await recheckWaiting(ctx, new AbortController().signal);
      assert.deepEqual((await ledger.list({})).map((r) => r.recordingId).sort(), ['in', 'late-in']);
    } finally {
      await ledger.close();
    }
  });
});

describe('dry run', () => {
  function source(pages: ListedPage[]): RecordingSource {
    return {
      dialect: 'recording-api',
      pageSize: 100,
      async *listWindow() {
        for (const page of pages) yield await Promise.resolve(page);
      },
      recheckWaiting: () => Promise.reject(new Error('not in a dry run')),
      preflight: () => Promise.reject(new Error('not in a dry run')),
      mediaLink: () => Promise.reject(new Error('not in a dry run')),
      mediaMissing: () => Promise.reject(new Error('not in a dry run')),
    };
  }

  test('the ledger it hands the source refuses every use', () => {
    assert.throws(() => noLedger.list({}), /a dry run touches no ledger/);
  });

  test('counts, what would be fetched, the size estimate and the budgets', async () => {
    const pages: ListedPage[] = [
      {
        listed: 3,
        byStatus: { Available: 2, Failed: 1 },
        jobs: [
          job(apiMeta('a')),
          job(apiMeta('a'), { channel: 'agent' }),
          job(apiMeta('f', { status: 'Failed' }), {
            state: 'failed_processing',
            reason: 'transcoding failed',
          }),
          job(apiMeta('o', { direction: 'outbound', durationSeconds: 50 })),
        ],
      },
      {
        listed: 1,
        byStatus: { Processing: 1 },
        jobs: [job(apiMeta('w', { status: 'Processing', durationSeconds: 10 }), { state: 'waiting' })],
      },
    ];
    const all = await listForDryRun(
      source(pages),
      { from: 'a', to: 'b' },
      { signal: new AbortController().signal },
    );
    assert.equal(all.listed, 4);
    assert.deepEqual(all.byStatus, { Available: 2, Failed: 1, Processing: 1 });
    assert.equal(all.listingCalls, 2);
    assert.equal(all.recordings, 4);
    const plan = planDryRun(all, {
      dialect: 'recording-api',
      rateLimitPerMinute: 50,
      playbackLimit: 150,
      playbackWindowSeconds: 300,
    });
    assert.equal(plan.fetchNow, 3);
    assert.equal(plan.fetchLater, 1);
    assert.deepEqual(plan.settled, { failed_processing: { 'transcoding failed': 1 } });
    assert.equal(plan.durationSeconds, 100 + 100 + 50 + 10);
    assert.equal(plan.estimatedBytes, 260 * 16_000);
    // Two listings of 2 pages, a token, 4 download URLs, 1 detail (the agent channel).
    assert.deepEqual(plan.budget.apiParts, { listing: 4, token: 1, 'download-URL': 4, detail: 1 });
    assert.equal(plan.budget.apiMinutes, 10 / 50);
    assert.equal(plan.budget.playbackCalls, 0);

    const inbound = await listForDryRun(
      source(pages),
      { from: 'a', to: 'b' },
      { select: (m) => m.direction === 'inbound', signal: new AbortController().signal },
    );
    assert.equal(inbound.recordings, 4, 'recordings before the selection');
    assert.deepEqual([...new Set(inbound.rows.map((r) => r.recordingId))].sort(), ['a', 'f', 'w']);
    const platform = planDryRun(inbound, {
      dialect: 'platform',
      rateLimitPerMinute: 50,
      playbackLimit: 150,
      playbackWindowSeconds: 300,
    });
    assert.equal(platform.budget.playbackCalls, 3);
    assert.equal(platform.budget.playbackMinutes, (3 / 150) * 5);
    assert.deepEqual(platform.budget.apiParts, { listing: 4 });
  });
});
