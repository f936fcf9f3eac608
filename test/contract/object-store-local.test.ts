import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { CxrecError } from '../../src/errors.js';
import { newOwner, ownerExpiresAfterMs } from '../../src/owners.js';
import { openLocalObjectStore } from '../../src/storage/local.js';
import { objectStoreSuite } from './object-store.suite.js';

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path, base)));
    else out.push(relative(base, path).split(sep).join('/'));
  }
  return out;
}

async function freshRoot(): Promise<{ parent: string; root: string }> {
  const parent = await mkdtemp(join(tmpdir(), 'cxrec-local-'));
  return { parent, root: join(parent, 'store') };
}

objectStoreSuite(
  'local',
  async () => {
    const { parent, root } = await freshRoot();
    return {
      store: await openLocalObjectStore(root),
      reopen: () => openLocalObjectStore(root),
      cleanup: () => rm(parent, { recursive: true, force: true }),
      listAllKeys: () => listFiles(parent),
      assertNoLeftovers: async () => {
        const partial = await listFiles(join(root, '.partial')).catch(() => []);
        assert.deepEqual(partial, [], '.partial/ is empty');
      },
    };
  },
  {
    rootPrefix: 'store/',
    resumesAcrossCrash: true,
    keepsDigests: false,
    checksMd5AtCommit: false,
    largeObjectBytes: 300_000,
  },
);

describe('local object store specifics', () => {
  it('creates files 0640 and directories 0750 at most', async () => {
    const { parent, root } = await freshRoot();
    try {
      const store = await openLocalObjectStore(root);
      await store.putSmall('metadata/a.json', Buffer.from('{}'), { contentType: 'application/json' });
      const upload = await store.openUpload('recordings/a_combined.wav', {
        contentType: 'audio/wav',
        sizeBytes: 3,
      });
      await upload.write(Buffer.from('abc'));
      await upload.commit({
        sizeBytes: 3,
        md5: createHash('md5').update('abc').digest('hex'),
        sha256: createHash('sha256').update('abc').digest('hex'),
        contentType: 'audio/wav',
      });
      const mode = async (p: string): Promise<number> => (await stat(join(root, p))).mode & 0o777;
      // The umask may take bits away, never add them.
      for (const file of ['metadata/a.json', 'recordings/a_combined.wav']) {
        assert.equal((await mode(file)) & ~0o640, 0, file);
        assert.equal((await mode(file)) & 0o600, 0o600, file);
      }
      for (const dir of ['recordings', 'metadata', '.partial']) {
        assert.equal((await mode(dir)) & ~0o750, 0, dir);
        assert.equal((await mode(dir)) & 0o700, 0o700, dir);
      }
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('a second writer of a key is refused while the first is live', async () => {
    const { parent, root } = await freshRoot();
    try {
      const store = await openLocalObjectStore(root);
      const key = 'recordings/b_combined.wav';
      const first = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 10 });
      await assert.rejects(
        (await openLocalObjectStore(root)).openUpload(key, {
          contentType: 'audio/wav',
          sizeBytes: 10,
          resumeToken: first.resumeToken,
        }),
        (err: unknown) => err instanceof CxrecError && /in progress/.test(err.message),
      );
      await first.abort();
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('a lock with unreadable content is taken over once it is old, not while it is young', async () => {
    const { parent, root } = await freshRoot();
    try {
      const store = await openLocalObjectStore(root);
      const key = 'recordings/c_combined.wav';
      const probe = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 1 });
      const lock = join(root, '.partial', `${probe.resumeToken}.lock`);
      await probe.park();
      await writeFile(lock, '');
      // Young: the open waits for its owner to write it, and does not take it over.
      let settled = false;
      const waiting = store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 1 }).finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(settled, false, 'waits while the lock is young and unwritten');
      // Its owner writes it (a live process of this host): the open is refused.
      await writeFile(lock, JSON.stringify({ pid: process.ppid, host: hostname() }));
      await assert.rejects(waiting, /in progress/);
      await writeFile(lock, '');
      const { utimes } = await import('node:fs/promises');
      await utimes(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 1 });
      await upload.abort();
      assert.deepEqual(await listFiles(join(root, '.partial')), []);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('after a killed process, resumes from the last durable checkpoint', async () => {
    const { parent, root } = await freshRoot();
    try {
      const key = 'recordings/d_combined.wav';
      const bytes = randomBytes(40 * 1024 * 1024);
      const source = join(parent, 'source.bin');
      await writeFile(source, bytes);
      const child = fileURLToPath(new URL('../helpers/local-crash-writer.ts', import.meta.url));
      // The child writes 36 MiB (one checkpoint at 32 MiB) and exits without park or abort.
      const { stdout } = await promisify(execFile)(process.execPath, [
        '--import',
        'tsx',
        child,
        root,
        key,
        source,
        String(36 * 1024 * 1024),
      ]);
      const token = stdout.trim();
      const store = await openLocalObjectStore(root);
      const upload = await store.openUpload(key, {
        contentType: 'audio/wav',
        sizeBytes: bytes.length,
        resumeToken: token,
      });
      assert.equal(upload.stagedBytes, 32 * 1024 * 1024, 'only the fsynced checkpoint is trusted');
      const staged: Buffer[] = [];
      for await (const c of upload.readStaged!()) staged.push(c as Buffer);
      assert.ok(Buffer.concat(staged).equals(bytes.subarray(0, upload.stagedBytes)));
      await upload.write(bytes.subarray(upload.stagedBytes));
      await upload.commit({
        sizeBytes: bytes.length,
        md5: createHash('md5').update(bytes).digest('hex'),
        sha256: createHash('sha256').update(bytes).digest('hex'),
        contentType: 'audio/wav',
      });
      assert.equal((await store.head(key))?.sizeBytes, bytes.length);
      assert.deepEqual(await listFiles(join(root, '.partial')), []);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('without the token, a dead process leftover is replaced by an empty upload', async () => {
    const { parent, root } = await freshRoot();
    try {
      const store = await openLocalObjectStore(root);
      const key = 'recordings/e_combined.wav';
      const first = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 100 });
      await first.write(Buffer.alloc(50));
      await first.park();
      const second = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 100 });
      assert.equal(second.stagedBytes, 0);
      await second.abort();
      assert.deepEqual(await listFiles(join(root, '.partial')), []);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

describe('local sweepStaging', () => {
  const keepNone = { keepTokens: new Set<string>() };
  const hourAndMore = new Date(Date.now() - 2 * 3_600_000);

  /** A pid that belonged to a process that has exited. */
  function deadPid(): number {
    const pid = spawnSync(process.execPath, ['-e', '']).pid;
    assert.ok(pid > 0);
    return pid;
  }

  /** Commits `key` and leaves its lock behind naming `owner`, as a process killed after its rename would. */
  async function commitLeavingLock(
    root: string,
    key: string,
    owner: { pid: number; host: string },
  ): Promise<string> {
    const store = await openLocalObjectStore(root);
    const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 3 });
    await upload.write(Buffer.from('abc'));
    await upload.commit({
      sizeBytes: 3,
      md5: createHash('md5').update('abc').digest('hex'),
      sha256: createHash('sha256').update('abc').digest('hex'),
      contentType: 'audio/wav',
    });
    const lock = join(root, '.partial', `${upload.resumeToken}.lock`);
    await writeFile(lock, JSON.stringify(owner));
    return lock;
  }

  it('removes a lock left after a commit by a dead process on this host', async () => {
    const { parent, root } = await freshRoot();
    try {
      await commitLeavingLock(root, 'recordings/s1_combined.wav', { pid: deadPid(), host: hostname() });
      const store = await openLocalObjectStore(root);
      assert.equal(await store.sweepStaging!(keepNone), 1);
      assert.deepEqual(await listFiles(join(root, '.partial')), []);
      assert.equal((await store.head('recordings/s1_combined.wav'))?.sizeBytes, 3);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('keeps a lock whose process on this host is alive, and an upload this process has open', async () => {
    const { parent, root } = await freshRoot();
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      assert.ok(sleeper.pid);
      await commitLeavingLock(root, 'recordings/s2_combined.wav', { pid: sleeper.pid, host: hostname() });
      const store = await openLocalObjectStore(root);
      const open = await store.openUpload('recordings/s3_combined.wav', {
        contentType: 'audio/wav',
        sizeBytes: 100,
      });
      await open.write(Buffer.alloc(50));
      assert.equal(await store.sweepStaging!(keepNone), 0);
      assert.equal(
        (await listFiles(join(root, '.partial'))).length,
        4,
        "two locks, one .part and this store's heartbeat file",
      );
      await open.abort();
    } finally {
      sleeper.kill('SIGKILL');
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('removes a parked upload unless its token is kept', async () => {
    const { parent, root } = await freshRoot();
    try {
      const store = await openLocalObjectStore(root);
      const parked = await store.openUpload('recordings/s4_combined.wav', {
        contentType: 'audio/wav',
        sizeBytes: 5 * 1024 * 1024,
      });
      await parked.write(randomBytes(4 * 1024 * 1024 + 10)); // past a checkpoint: a .len too
      await parked.park();
      assert.equal(await store.sweepStaging!({ keepTokens: new Set([parked.resumeToken]) }), 0);
      assert.deepEqual((await listFiles(join(root, '.partial'))).sort(), [
        parked.resumeToken,
        `${parked.resumeToken}.len`,
      ]);
      assert.equal(await store.sweepStaging!(keepNone), 2);
      assert.deepEqual(await listFiles(join(root, '.partial')), []);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('a lock from another host (or unreadable) goes only after an hour without a write', async () => {
    const { parent, root } = await freshRoot();
    try {
      const foreign = await commitLeavingLock(root, 'recordings/s5_combined.wav', {
        pid: process.pid,
        host: 'the-other-nas-client',
      });
      const unreadable = await commitLeavingLock(root, 'recordings/s6_combined.wav', {
        pid: 1,
        host: hostname(),
      });
      await writeFile(unreadable, '{"pid":');
      const store = await openLocalObjectStore(root);
      assert.equal(await store.sweepStaging!(keepNone), 0, 'young: its writer may be alive');
      await utimes(foreign, hourAndMore, hourAndMore);
      await utimes(unreadable, hourAndMore, hourAndMore);
      assert.equal(await store.sweepStaging!(keepNone), 2);
      assert.deepEqual(await listFiles(join(root, '.partial')), []);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('removes temp files of dead writers, keeps young ones of unknown writers and files not ours', async () => {
    const { parent, root } = await freshRoot();
    try {
      const store = await openLocalObjectStore(root);
      await store.probe(); // creates .partial/
      const partial = join(root, '.partial');
      const hex = (): string => randomBytes(8).toString('hex');
      // An owner with no heartbeat file is gone; one whose heartbeat is fresh is live.
      const dead = `small-${randomUUID()}-${hex()}.tmp`;
      const liveOwner = { ...newOwner(), pid: 1, kernel: null };
      const beat = `owner-${liveOwner.id}.beat`;
      await writeFile(join(partial, beat), JSON.stringify(liveOwner));
      const live = `small-${liveOwner.id}-${hex()}.tmp`;
      const oldFormat = `probe-${hex()}.tmp`;
      const foreignOld = `small-1-00000000-${hex()}.tmp`;
      const notOurs = 'notes.txt';
      for (const name of [dead, live, oldFormat, foreignOld, notOurs])
        await writeFile(join(partial, name), 'x');
      await utimes(join(partial, foreignOld), hourAndMore, hourAndMore);
      assert.equal(await store.sweepStaging!(keepNone), 2);
      assert.deepEqual((await listFiles(partial)).sort(), [beat, live, notOurs, oldFormat].sort());
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('a missing staging directory sweeps nothing', async () => {
    const { parent, root } = await freshRoot();
    try {
      assert.equal(await (await openLocalObjectStore(root)).sweepStaging!(keepNone), 0);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

describe('local staging: two owners with the same host name and pid (two containers)', () => {
  const keepNone = { keepTokens: new Set<string>() };
  const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  /** Two stores on one root, as two containers whose cxrec both run as pid 1 of host "same-host". */
  async function twoOwners(root: string) {
    const a = { ...newOwner(), host: 'same-host', pid: 1, kernel: null };
    const b = { ...newOwner(), host: 'same-host', pid: 1, kernel: null };
    return {
      a: await openLocalObjectStore(root, { owner: a }),
      b: await openLocalObjectStore(root, { owner: b }),
      aOwner: a,
    };
  }
  const agedBy = (ms: number): Date => new Date(Date.now() - ms);

  it("the sweep keeps the other owner's live .part; takes it over only after its heartbeat expired", async () => {
    const { parent, root } = await freshRoot();
    try {
      const { a, b, aOwner } = await twoOwners(root);
      const key = 'recordings/o1_combined.wav';
      const upload = await a.openUpload(key, { contentType: 'audio/wav', sizeBytes: 100 });
      await upload.write(Buffer.alloc(50, 1));
      assert.equal(await b.sweepStaging!(keepNone), 0, "a live owner's staging stays");
      await assert.rejects(
        b.openUpload(key, { contentType: 'audio/wav', sizeBytes: 100, resumeToken: upload.resumeToken }),
        (err: unknown) => err instanceof CxrecError && /in progress/.test(err.message),
        'the lock of a live owner is not taken over, even by the lease holder',
      );
      // Owner a stops beating (killed in its own container): once expired, b takes over.
      const beat = join(root, '.partial', `owner-${aOwner.id}.beat`);
      const old = agedBy(ownerExpiresAfterMs + 5_000);
      await utimes(beat, old, old);
      const taken = await b.openUpload(key, {
        contentType: 'audio/wav',
        sizeBytes: 100,
        resumeToken: upload.resumeToken,
      });
      // The gone owner's handle still writes: it must not reach b's file.
      await upload.write(Buffer.alloc(50, 9));
      const body = Buffer.alloc(100, 2);
      await taken.write(body.subarray(taken.stagedBytes));
      const info = await taken.commit({
        sizeBytes: 100,
        md5: md5(body),
        sha256: sha(body),
        contentType: 'audio/wav',
      });
      assert.equal(info.sizeBytes, 100);
      const stored: Buffer[] = [];
      for await (const c of await b.read(key)) stored.push(c as Buffer);
      assert.ok(Buffer.concat(stored).equals(body), "the object is b's bytes only");
      // a's commit refuses: the path no longer names the file its handle wrote.
      await assert.rejects(
        upload.commit({ sizeBytes: 100, md5: md5(body), sha256: sha(body), contentType: 'audio/wav' }),
        (err: unknown) => err instanceof CxrecError && /taken over/.test(err.message),
      );
      await upload.park();
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("releaseLock never deletes another owner's lock, and commit refuses a file that is not its handle's", async () => {
    const { parent, root } = await freshRoot();
    try {
      const { a, b, aOwner } = await twoOwners(root);
      const key = 'recordings/o2_combined.wav';
      const first = await a.openUpload(key, { contentType: 'audio/wav', sizeBytes: 3 });
      await first.write(Buffer.from('abc'));
      const beat = join(root, '.partial', `owner-${aOwner.id}.beat`);
      const old = agedBy(ownerExpiresAfterMs + 5_000);
      await utimes(beat, old, old);
      const second = await b.openUpload(key, { contentType: 'audio/wav', sizeBytes: 3 });
      const lockPath = join(root, '.partial', `${second.resumeToken}.lock`);
      const lockBefore = await readFile(lockPath, 'utf8');
      // a (only seemed gone) aborts: b's lock and b's file stay.
      await first.abort();
      assert.equal(await readFile(lockPath, 'utf8'), lockBefore, "b's lock is still there");
      await second.write(Buffer.from('xyz'));
      const body = Buffer.from('xyz');
      await second.commit({ sizeBytes: 3, md5: md5(body), sha256: sha(body), contentType: 'audio/wav' });
      assert.equal((await b.head(key))?.sizeBytes, 3);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('a temp file of a live owner with our host name and pid is kept', async () => {
    const { parent, root } = await freshRoot();
    try {
      const { a, b } = await twoOwners(root);
      const upload = await a.openUpload('recordings/o3_combined.wav', {
        contentType: 'audio/wav',
        sizeBytes: 10,
      });
      const names = await readdir(join(root, '.partial'));
      assert.equal(await b.sweepStaging!(keepNone), 0);
      assert.deepEqual((await readdir(join(root, '.partial'))).sort(), names.sort());
      await upload.abort();
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});
