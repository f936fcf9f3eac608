/**
 * `manifest --format csv` neutralises cells a spreadsheet would run as a
 * formula; JSON lines keep every value verbatim (issue 12, point 13).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { csvField } from '../../src/cli/manifest.js';
import { openLedger } from '../../src/state/open-state.js';
import { runCli } from '../helpers/run-cli.js';

const hostileIds = ['=HYPERLINK("http://evil/x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\rx', 'plain-1'];

describe('manifest CSV and formula cells', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cxrec-manifest-'));
    const statePath = join(dir, 'state.db');
    env = {
      CXONE_API_URL: 'http://127.0.0.1:1',
      CXONE_CLIENT_ID: 'id',
      CXONE_CLIENT_SECRET: 'secret',
      CXREC_STORAGE: join(dir, 'store'),
      CXREC_STATE: statePath,
    };
    const ledger = await openLedger({ kind: 'sqlite', path: statePath });
    try {
      const createdDate = '2026-01-01T00:00:00Z';
      await ledger.upsertDiscovered(
        hostileIds.map((recordingId) => ({
          recordingId,
          channel: 'combined' as const,
          meta: { recordingId, status: 'Available', createdDate },
          state: 'pending' as const,
          nextRunAt: 0,
        })),
      );
      const now = Date.now();
      const rows = await ledger.claim({ owner: 'test', limit: 100, leaseMs: 60_000, now });
      assert.equal(rows.length, hostileIds.length);
      for (const row of rows) {
        const stored = {
          key: `recordings/${row.recordingId.length}.wav`,
          sizeBytes: 2048,
          md5: 'a'.repeat(32),
          sha256: 'b'.repeat(64),
          contentType: 'audio/wav',
          storedAt: now,
        };
        assert.ok(await ledger.finish(row, 'test', { state: 'stored', stored }));
      }
    } finally {
      await ledger.close();
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('csvField prefixes formula cells with a quote and quotes them, leaves others alone', () => {
    assert.equal(csvField('=1+1'), `"'=1+1"`);
    assert.equal(csvField('+1'), `"'+1"`);
    assert.equal(csvField('-1'), `"'-1"`);
    assert.equal(csvField('@A1'), `"'@A1"`);
    assert.equal(csvField('\tA'), `"'\tA"`);
    assert.equal(csvField('\rA'), `"'\rA"`);
    assert.equal(csvField('=HYPERLINK("a")'), `"'=HYPERLINK(""a"")"`);
    assert.equal(csvField('abc-1'), 'abc-1');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('2026-01-01T00:00:00.000Z'), '2026-01-01T00:00:00.000Z');
  });

  test('the CSV manifest has no cell starting a formula; JSON lines keep the ids exactly', async () => {
    const csv = await runCli(['manifest', '--format', 'csv'], env);
    assert.equal(csv.code, 0, csv.stderr);
    const ids = hostileIds.filter((id) => id !== 'plain-1');
    for (const id of ids)
      assert.ok(csv.stdout.includes(csvField(id)), `${JSON.stringify(id)} not neutralised`);
    // No record (nor field after a comma) starts with a formula character unquoted.
    assert.doesNotMatch(csv.stdout, /(^|\n|,)[=+\-@\t]/);
    assert.match(csv.stdout, /\nplain-1,combined,/);

    const jsonl = await runCli(['manifest'], env);
    assert.equal(jsonl.code, 0, jsonl.stderr);
    const listed = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { recordingId: string }).recordingId);
    assert.deepEqual([...listed].sort(), [...hostileIds].sort());
  });
});
