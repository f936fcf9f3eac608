import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CxrecError } from '../../../src/errors.js';
import { claimSoleProcess } from '../../../src/pipeline/sole-process.js';

describe('one working process per SQLite ledger', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cxrec-sole-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a second claim is refused naming PostgreSQL (exit 2); after release it is granted', async () => {
    const ledger = join(dir, 'a', 'state.db');
    const first = await claimSoleProcess(ledger);
    // Another live process of this host: this test process's parent.
    await writeFile(`${ledger}.process`, `${hostname()} ${process.ppid} other\n`);
    await assert.rejects(claimSoleProcess(ledger), (err: unknown) => {
      assert.ok(err instanceof CxrecError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /in use by another cxrec process.*PostgreSQL/s);
      return true;
    });
    await first.release(); // not its claim any more: left alone
    assert.match(await readFile(`${ledger}.process`, 'utf8'), /other/);
    await rm(`${ledger}.process`);
    const again = await claimSoleProcess(ledger);
    await again.release();
    await assert.rejects(readFile(`${ledger}.process`, 'utf8'), /ENOENT/);
  });

  test('the claim of a process that died on this host is taken over at once', async () => {
    const ledger = join(dir, 'b.db');
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
    await writeFile(`${ledger}.process`, `${hostname()} ${dead} killed\n`);
    const claim = await claimSoleProcess(ledger);
    assert.match(await readFile(`${ledger}.process`, 'utf8'), new RegExp(`^${hostname()} ${process.pid} `));
    await claim.release();
  });

  test('a claim whose heartbeat stopped a minute ago is taken over, whatever host it names', async () => {
    const ledger = join(dir, 'c.db');
    await writeFile(`${ledger}.process`, 'another-host 1 crashed\n');
    await assert.rejects(claimSoleProcess(ledger), CxrecError);
    const old = new Date(Date.now() - 120_000);
    await utimes(`${ledger}.process`, old, old);
    const claim = await claimSoleProcess(ledger);
    await claim.release();
  });
});

describe('claimSoleProcess in containers', () => {
  test('a claim of another pid namespace with our host name and a pid not running here is not taken over', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-sole-ns-'));
    try {
      const ledger = join(dir, 'ledger.db');
      const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
      // Another container: same host name, its own pid namespace, a fresh heartbeat.
      await writeFile(`${ledger}.process`, `${hostname()} ${dead} other pid:[1]/elsewhere\n`);
      await assert.rejects(claimSoleProcess(ledger), /in use by another cxrec process/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
