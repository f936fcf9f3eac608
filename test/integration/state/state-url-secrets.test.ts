/**
 * A database password in CXREC_STATE never reaches stdout or stderr of
 * `status` and `doctor`, in any form pg honours, whether the server answers
 * or not (issue 12, point 7).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createTestDatabase, type TestDatabase } from '../../helpers/postgres-database.js';
import { runCli } from '../../helpers/run-cli.js';

const secrets = ['Pw-User1', 'Pw-Query2', 'Pw-Ssl3', 'Pw-Enc4', 'Pw%20Sp5', 'Pw Sp5'];

/** The test database's URL with a password in every form (trust auth ignores them). */
function withPasswords(url: string, options: { port?: number; userPassword?: string } = {}): string {
  const u = new URL(url);
  const port = options.port ?? u.port;
  const query = '?password=Pw-Query2&sslpassword=Pw-Ssl3&pass%77ord=Pw-Enc4';
  return `postgres://postgres:${options.userPassword ?? 'Pw-User1'}@${u.hostname}:${port}${u.pathname}${query}`;
}

function assertHidden(what: string, out: { stdout: string; stderr: string }): void {
  for (const secret of secrets) {
    assert.ok(!out.stdout.includes(secret), `${what}: ${secret} in stdout: ${out.stdout}`);
    assert.ok(!out.stderr.includes(secret), `${what}: ${secret} in stderr: ${out.stderr}`);
  }
}

describe('database passwords in CXREC_STATE', () => {
  let db: TestDatabase;
  let dir: string;
  let base: NodeJS.ProcessEnv;

  before(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'cxrec-pw-'));
    base = {
      CXONE_API_URL: 'http://127.0.0.1:1',
      CXONE_CLIENT_ID: 'id',
      CXONE_CLIENT_SECRET: 'secret',
      CXREC_STORAGE: join(dir, 'store'),
      CXREC_BACKOFF_SECONDS: '0.01', // the unreachable CXone check fails fast
    };
  });
  after(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test('status and doctor on a reachable server name it without any password', async () => {
    const env = { ...base, CXREC_STATE: withPasswords(db.url) };
    const status = await runCli(['status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    assertHidden('status', status);
    assert.match((JSON.parse(status.stdout) as { ledger: string }).ledger, /127\.0\.0\.1:5432/);
    const doctor = await runCli(['doctor'], env);
    assertHidden('doctor', doctor);
    assert.match(doctor.stdout, /^ok +state/m);
  });

  test('a failing connection names the server without any password', async () => {
    const env = { ...base, CXREC_STATE: withPasswords(db.url, { port: 1, userPassword: 'Pw Sp5' }) };
    const status = await runCli(['status'], env);
    assert.notEqual(status.code, 0);
    assert.match(status.stderr, /127\.0\.0\.1:1\//);
    assertHidden('status', status);
    const doctor = await runCli(['doctor'], env);
    assert.equal(doctor.code, 1);
    assert.match(doctor.stdout, /^FAIL +state/m);
    assertHidden('doctor', doctor);
  });

  test('a settings error names CXREC_STATE without its password', async () => {
    const bad = await runCli(['status'], {
      ...base,
      CXREC_STATE: 'postgres://postgres:Pw Sp5@[bad/db?password=Pw-Query2',
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /CXREC_STATE/);
    assertHidden('settings', bad);
  });
});
