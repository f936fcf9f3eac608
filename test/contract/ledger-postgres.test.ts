/**
 * The ledger suite against the machine's real PostgreSQL
 * (CXREC_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres):
 * every test gets its own `cxrec_test_<random>` database, dropped after.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';

import pg from 'pg';

import { CxrecError } from '../../src/errors.js';
import type { Ledger } from '../../src/state/ledger.js';
import { parseStateTarget } from '../../src/config.js';
import { openLedger } from '../../src/state/open-state.js';
import { openPostgresLedger, PostgresLedger } from '../../src/state/postgres.js';
import { ledgerSuite } from './ledger.suite.js';

const adminUrl = process.env.CXREC_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const prefix = `cxrec_test_${randomBytes(3).toString('hex')}_`;
let created = 0;

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database and its URL. */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}${created++}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

after(async () => {
  const { rows } = await admin((c) =>
    c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${prefix}%`]),
  );
  assert.deepEqual(rows, [], 'no test database leaked');
});

ledgerSuite('postgres', async () => {
  const { url, drop } = await freshDatabase();
  const handles: Ledger[] = [await openLedger(parseStateTarget(url))];
  return {
    ledger: handles[0]!,
    async reopen() {
      const l = await openLedger(parseStateTarget(url));
      handles.push(l);
      return l;
    },
    async cleanup() {
      for (const l of handles) await l.close();
      await drop();
    },
  };
});

describe('postgres ledger: the database', () => {
  test('processes starting at once apply each migration exactly once', async () => {
    const { url, drop } = await freshDatabase();
    try {
      const ledgers = await Promise.all(Array.from({ length: 5 }, () => openPostgresLedger(url)));
      for (const l of ledgers) await l.close();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query('SELECT version, name FROM schema_migrations ORDER BY version');
        assert.deepEqual(rows, [
          { version: 1, name: 'jobs' },
          { version: 2, name: 'leases' },
          { version: 3, name: 'rate_limit' },
          { version: 4, name: 'rate_pace' },
          { version: 5, name: 'contact_details' },
          { version: 6, name: 'exports' },
          { version: 7, name: 'scale_indexes' },
          { version: 8, name: 'processes' },
          { version: 10, name: 'failure_detail' },
        ]);
      } finally {
        await client.end();
      }
    } finally {
      await drop();
    }
  });

  test('the location never shows the password', async () => {
    const { url, drop } = await freshDatabase();
    try {
      const withPassword = new URL(url);
      withPassword.password = 's3cret-pw'; // trust auth ignores it
      const ledger = await openLedger(
        parseStateTarget(withPassword.toString().replace(/^postgres:/, 'postgresql:')),
      );
      try {
        assert.ok(ledger instanceof PostgresLedger);
        assert.doesNotMatch(ledger.location, /s3cret-pw/);
      } finally {
        await ledger.close();
      }
    } finally {
      await drop();
    }
  });

  test('an unreachable server is a ledger error naming the URL without its password', async () => {
    await assert.rejects(
      openPostgresLedger('postgres://cxrec:s3cret-pw@127.0.0.1:1/nowhere'),
      (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'ledger');
        assert.match(err.message, /127\.0\.0\.1:1\/nowhere/);
        assert.match(err.message, /CXREC_STATE/);
        assert.doesNotMatch(err.message, /s3cret-pw/);
        assert.equal(err.retryable, true);
        return true;
      },
    );
  });
});
