/** Local roots that fold case hash ids with capitals (issue 12, point 12). */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { probeCaseFolding, type CaseProbeFs } from '../../../src/storage/case-folding.js';
import { recordingKeyPart, recordingObjectKey, sidecarObjectKey } from '../../../src/storage/keys.js';
import { openLocalObjectStore } from '../../../src/storage/local.js';

const hashed = (id: string): string =>
  `id-${createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 32)}`;

/** An in-memory file system that folds case, like SMB/NTFS or APFS; `dirs` exist. */
function foldingFs(dirs: readonly string[]): CaseProbeFs & { files: Map<string, number> } {
  const files = new Map<string, number>();
  const fold = (p: string): string => p.toLowerCase();
  const enoent = (p: string): Error => Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
  const parentExists = (p: string): boolean =>
    dirs.some((d) => fold(join(d, 'x')) === fold(join(p, '..', 'x')));
  let nextIno = 1;
  return {
    files,
    create: (p) => {
      if (!parentExists(p)) return Promise.reject(enoent(p));
      if (files.has(fold(p))) return Promise.reject(Object.assign(new Error('EEXIST'), { code: 'EEXIST' }));
      files.set(fold(p), nextIno++);
      return Promise.resolve();
    },
    identity: (p) => {
      const ino = files.get(fold(p));
      return ino === undefined ? Promise.reject(enoent(p)) : Promise.resolve({ dev: 1, ino });
    },
    remove: (p) => {
      files.delete(fold(p));
      return Promise.resolve();
    },
  };
}

describe('keys on a case-folding store', () => {
  test('ids holding A-Z are hashed, others kept; without folding nothing changes', () => {
    const folding = { foldsCase: true };
    assert.equal(recordingKeyPart('ABC', folding), hashed('ABC'));
    assert.equal(recordingKeyPart('abc', folding), 'abc');
    assert.equal(recordingKeyPart('12-x_9', folding), '12-x_9');
    assert.notEqual(
      recordingKeyPart('ABC', folding).toLowerCase(),
      recordingKeyPart('abc', folding).toLowerCase(),
    );
    assert.notEqual(
      recordingKeyPart('Abc', folding).toLowerCase(),
      recordingKeyPart('aBc', folding).toLowerCase(),
    );
    assert.equal(recordingKeyPart('ABC'), 'ABC');
    assert.equal(recordingKeyPart('ABC', { foldsCase: false }), 'ABC');
    assert.equal(
      recordingObjectKey('Rec1', 'agent', 'audio/wav', '', folding),
      `recordings/${hashed('Rec1')}_agent.wav`,
    );
    assert.equal(sidecarObjectKey('Rec1', '', folding), `metadata/${hashed('Rec1')}.json`);
  });
});

describe('probeCaseFolding', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cxrec-case-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a file system that folds case is detected, and the probe file is removed', async () => {
    const fs = foldingFs(['/mnt/share']);
    assert.equal(await probeCaseFolding('/mnt/share', fs), true);
    assert.equal(fs.files.size, 0);
  });

  test('a root not created yet is probed in the nearest directory above it', async () => {
    const fs = foldingFs(['/mnt/share']);
    assert.equal(await probeCaseFolding('/mnt/share/cxrec/store', fs), true);
    assert.equal(fs.files.size, 0);
  });

  test('this machine’s case-sensitive file system is not folding, and nothing is left behind', async () => {
    assert.equal(await probeCaseFolding(dir), false);
    assert.equal(await probeCaseFolding(join(dir, 'not', 'yet')), false);
    assert.deepEqual(await readdir(dir), []);
  });

  test('the local store reports what the probe found', async () => {
    assert.equal((await openLocalObjectStore(join(dir, 'a'))).foldsCase, false);
    assert.equal(
      (await openLocalObjectStore(join('/mnt/share', 'store'), { caseProbeFs: foldingFs(['/mnt/share']) }))
        .foldsCase,
      true,
    );
  });
});
