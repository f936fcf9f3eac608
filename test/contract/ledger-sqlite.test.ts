import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import Database from 'better-sqlite3';

import { CxrecError } from '../../src/errors.js';
import type { Ledger } from '../../src/state/ledger.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import { openSqliteLedger, SqliteLedger } from '../../src/state/sqlite.js';
import { ledgerSuite } from './ledger.suite.js';

const root = await mkdtemp(join(tmpdir(), 'cxrec-ledger-sqlite-'));
after(async () => {
  // Every test cleaned up after itself: nothing is left in the root.
  const left = await readdir(root);
  await rm(root, { recursive: true, force: true });
  assert.deepEqual(left, [], 'no temp directory leaked');
});

async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(root, 'case-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

ledgerSuite('sqlite', async () => {
  const { dir, remove } = await tempDir();
  const path = join(dir, 'state', 'cxrec-state.db');
  const handles: Ledger[] = [await openLedger(parseStateTarget(path))];
  return {
    ledger: handles[0]!,
    async reopen() {
      const l = await openLedger(parseStateTarget(path));
      handles.push(l);
      return l;
    },
    async cleanup() {
      for (const l of handles) await l.close();
      await remove();
    },
  };
});

describe('sqlite ledger: the file', () => {
  test('creates its folder, uses WAL and records the migrations it applied', async () => {
    const { dir, remove } = await tempDir();
    try {
      const path = join(dir, 'a', 'b', 'ledger.db');
      const ledger = await openSqliteLedger(path);
      assert.equal(ledger.location, path);
      await ledger.close();
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
        const versions = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
        assert.deepEqual(versions, [
          { version: 1, name: 'jobs' },
          { version: 2, name: 'leases' },
          { version: 3, name: 'rate_limit_log' },
          { version: 4, name: 'rate_limit_budgets' },
          { version: 5, name: 'contact_details' },
          { version: 6, name: 'exports' },
          { version: 7, name: 'scale_indexes' },
          { version: 8, name: 'processes' },
          { version: 10, name: 'failure_detail' },
        ]);
      } finally {
        db.close();
      }
      // Opening again applies nothing twice.
      await (await openSqliteLedger(path)).close();
    } finally {
      await remove();
    }
  });

  test('a file that is not a SQLite database is refused, naming the file', async () => {
    const { dir, remove } = await tempDir();
    try {
      const path = join(dir, 'notes.txt');
      await writeFile(path, 'these are not the pages you are looking for\n'.repeat(200));
      await assert.rejects(openSqliteLedger(path), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'ledger');
        assert.match(err.message, /is not a SQLite database/);
        assert.ok(err.message.includes(path));
        return true;
      });
    } finally {
      await remove();
    }
  });

  test('an unwritable location is refused with what to fix', async () => {
    const { dir, remove } = await tempDir();
    try {
      // A regular file where a folder should be: refused even when running as root.
      await writeFile(join(dir, 'file'), '');
      const path = join(dir, 'file', 'sub', 'ledger.db');
      await assert.rejects(openSqliteLedger(path), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'ledger');
        assert.match(err.message, /CXREC_STATE/);
        assert.ok(err.message.includes(join(dir, 'file', 'sub')));
        return true;
      });
    } finally {
      await remove();
    }
  });

  test('a ledger written by a newer cxrec is refused', async () => {
    const { dir, remove } = await tempDir();
    try {
      const path = join(dir, 'ledger.db');
      await (await openSqliteLedger(path)).close();
      const db = new Database(path);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run(
        'future',
      );
      db.close();
      await assert.rejects(openSqliteLedger(path), /newer cxrec \(migration 999\)/);
    } finally {
      await remove();
    }
  });

  test('a closed ledger refuses further calls', async () => {
    const ledger = await openSqliteLedger(':memory:');
    await ledger.close();
    await ledger.close();
    await assert.rejects(ledger.counts(), /is closed/);
  });
});

describe('openLedger', () => {
  test('a path or :memory: opens SQLite', async () => {
    const ledger = await openLedger(parseStateTarget(':memory:'));
    assert.ok(ledger instanceof SqliteLedger);
    await ledger.close();
  });

  test('an unknown URL scheme is a settings error, not a file name', () => {
    assert.throws(
      () => parseStateTarget('mysql://db/cxrec'),
      (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'config_invalid');
        return true;
      },
    );
  });
});
