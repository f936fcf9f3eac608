/**
 * Local (or mounted) directory storage. Integrity by construction: bytes are
 * staged in `<root>/.partial/`, the commit checks the size (the md5 is the
 * caller's, over the very buffers written here), fsyncs the file, renames it
 * into place and fsyncs the directory, so a reader (or a power cut) sees the
 * whole object or nothing.
 *
 * Staging names are derived from the key, so a run that crashed leaves a
 * partial file the next attempt finds again (its `resumeToken` is that
 * name). A lock beside it keeps two writers of one key apart; who owns a
 * lock, and when a leftover may be swept, is decided in `staging-locks.ts`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';

import { CxrecError, systemCode } from '../errors.js';
import { assertCommitSize, assertOpen, digestsOf, throwIfAborted } from './commit-check.js';
import { assertObjectKey, partialDirName } from './keys.js';
import { probeCaseFolding, type CaseProbeFs } from './case-folding.js';
import { noObjectAt } from './store-errors.js';
import type { Owner } from '../owners.js';
import { StagingLocks, unlinkIfPresent, type StagingLock } from './staging-locks.js';
import type {
  CommitOptions,
  ObjectInfo,
  ObjectStore,
  OpenUploadOptions,
  SignalOption,
  StagedUpload,
  PutSmallOptions,
} from './object-store.js';

const fileMode = 0o640;
const dirMode = 0o750;

/**
 * A staged file is fdatasync'ed and its durable length recorded in
 * `<name>.len` every this many bytes, so a resume after a power cut trusts
 * only bytes that reached the disk (a crash can leave zeros or stale blocks
 * at the tail of a file that was never fsynced). 32 MiB: at 4 MiB the
 * fdatasyncs cost about 8 % of export throughput (bench/export.bench.ts),
 * and a power cut costs at most 32 MiB fetched again.
 */
const checkpointEveryBytes = 32 * 1024 * 1024;

/**
 * Opens the store rooted at `root` (created on first write, 0750), probing
 * whether its file system folds case (`case-folding.ts`; `caseProbeFs` for
 * tests). `owner` names who holds its staging locks (default: this
 * process's owner; tests make two stores with different owners in one process).
 */
export async function openLocalObjectStore(
  root: string,
  options: { owner?: Owner; caseProbeFs?: CaseProbeFs } = {},
): Promise<ObjectStore> {
  const foldsCase = await probeCaseFolding(resolve(root), options.caseProbeFs);
  return new LocalObjectStore(resolve(root), foldsCase, options.owner);
}

class LocalObjectStore implements ObjectStore {
  readonly location: string;
  private readonly partialDir: string;
  private readonly locks: StagingLocks;

  constructor(
    private readonly root: string,
    readonly foldsCase: boolean,
    owner?: Owner,
  ) {
    this.location = root.endsWith(sep) ? root : root + sep;
    this.partialDir = join(root, partialDirName);
    this.locks = new StagingLocks({
      partialDir: this.partialDir,
      location: this.location,
      failure: (what, key, err) => this.failure(what, key, err),
      ...(owner ? { owner } : {}),
    });
  }

  async head(key: string, options?: SignalOption): Promise<ObjectInfo | undefined> {
    const path = this.pathFor(key);
    throwIfAborted(options?.signal, { key });
    try {
      const info = await stat(path);
      return info.isFile() ? { key, sizeBytes: info.size } : undefined;
    } catch (err) {
      if (systemCode(err) === 'ENOENT' || systemCode(err) === 'ENOTDIR') return undefined;
      throw this.failure('cannot stat object', key, err);
    }
  }

  async openUpload(key: string, options: OpenUploadOptions): Promise<StagedUpload> {
    const target = this.pathFor(key);
    throwIfAborted(options.signal, { key });
    await this.ensureDir(this.partialDir, key);
    const name = `${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 32)}.part`;
    const partPath = join(this.partialDir, name);
    const lock = await this.locks.acquire(partPath, key);
    try {
      let handle: FileHandle;
      let staged = 0;
      if (options.resumeToken === name) {
        // Taken over from a gone owner: resume from a copy of its durable bytes, never its file.
        if (lock.tookOver) await this.locks.detach(partPath, await readCheckpoint(`${partPath}.len`));
        const resumed = await this.openStaged(partPath);
        handle = resumed.handle;
        staged = resumed.stagedBytes;
      } else {
        // A partial of this key with no token naming it belongs to an attempt
        // that will not resume it (we hold the lock): start empty, in a new
        // file (truncating the old one would reach a handle still open on it).
        await unlinkIfPresent(partPath);
        await unlinkIfPresent(`${partPath}.len`);
        handle = await open(partPath, 'wx', fileMode);
      }
      return new LocalStagedUpload({
        key,
        location: this.location,
        target,
        partPath,
        lock,
        handle,
        stagedBytes: staged,
        resumeToken: name,
        ensureDir: (dir) => this.ensureDir(dir, key),
      });
    } catch (err) {
      await lock.release();
      throw err instanceof CxrecError ? err : this.failure('cannot open a staging file', key, err);
    }
  }

  async discardUpload(key: string, resumeToken: string, options?: SignalOption): Promise<void> {
    assertObjectKey(key, this.location);
    throwIfAborted(options?.signal, { key });
    // Only names this store hands out; anything else (a token from another
    // backend, or a tampered ledger) must not become a path.
    if (!/^[0-9a-f]{32}\.part$/.test(resumeToken)) return;
    const partPath = join(this.partialDir, resumeToken);
    const lock = await this.locks.acquire(partPath, key);
    try {
      await unlinkIfPresent(partPath);
      await unlinkIfPresent(`${partPath}.len`);
    } finally {
      await lock.release();
    }
  }

  async putSmall(key: string, body: Buffer, options: PutSmallOptions): Promise<ObjectInfo> {
    const target = this.pathFor(key);
    throwIfAborted(options.signal, { key });
    await this.ensureDir(this.partialDir, key);
    await this.locks.withTempName('small', async (name) => {
      const temp = join(this.partialDir, name);
      try {
        const handle = await open(temp, 'wx', fileMode);
        try {
          await handle.writeFile(body);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await this.ensureDir(dirname(target), key);
        await rename(temp, target);
        await fsyncDir(dirname(target));
      } catch (err) {
        await unlinkIfPresent(temp);
        throw this.failure('cannot write object', key, err);
      }
    });
    return { key, sizeBytes: body.length, ...digestsOf(body) };
  }

  async read(key: string, options?: SignalOption): Promise<Readable> {
    const path = this.pathFor(key);
    throwIfAborted(options?.signal, { key });
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (systemCode(err) === 'ENOENT') throw noObjectAt(this.location, key);
      throw this.failure('cannot open object', key, err);
    }
    const stream = handle.createReadStream();
    const signal = options?.signal;
    if (signal) {
      const onAbort = (): void => {
        stream.destroy(
          new CxrecError('aborted', 'read cancelled', { cause: signal.reason, context: { key } }),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  async delete(key: string, options?: SignalOption): Promise<void> {
    const path = this.pathFor(key);
    throwIfAborted(options?.signal, { key });
    try {
      await unlink(path);
      await fsyncDir(dirname(path));
    } catch (err) {
      if (systemCode(err) === 'ENOENT') return;
      throw this.failure('cannot delete object', key, err);
    }
  }

  /**
   * Removes `.partial/` leftovers no live process owns and no ledger row
   * will resume (`keepTokens`); see `StagingLocks.sweep`.
   */
  sweepStaging(options: SignalOption & { keepTokens: ReadonlySet<string> }): Promise<number> {
    return this.locks.sweep(options);
  }

  async probe(options?: SignalOption): Promise<void> {
    throwIfAborted(options?.signal, { key: partialDirName });
    try {
      await mkdir(this.partialDir, { recursive: true, mode: dirMode });
      await this.locks.withTempName('probe', async (name) => {
        const probe = join(this.partialDir, name);
        try {
          const handle = await open(probe, 'wx', fileMode);
          try {
            await handle.writeFile('cxrec probe\n');
            await handle.sync();
          } finally {
            await handle.close();
          }
        } finally {
          await unlinkIfPresent(probe);
        }
      });
    } catch (err) {
      throw new CxrecError(
        'storage',
        `cannot write under ${this.location}${partialDirName}/ (${systemCode(err) ?? 'error'}); check CXREC_STORAGE names a directory this user may create and write`,
        { cause: err, retryable: false, context: { location: this.location } },
      );
    }
  }

  /** Stops this store's staging heartbeat (its uploads are all committed, parked or aborted by now). */
  close(): Promise<void> {
    return this.locks.close();
  }

  /** The file for `key`, refusing keys that would leave the root. */
  private pathFor(key: string): string {
    assertObjectKey(key, this.location);
    const path = resolve(this.root, ...key.split('/'));
    if (!path.startsWith(this.location)) {
      throw new CxrecError('storage', 'refused object key: it resolves outside the storage root', {
        retryable: false,
        context: { key, location: this.location },
      });
    }
    return path;
  }

  /** Creates `dir` (0750) and fsyncs the parent of each directory it had to create. */
  private async ensureDir(dir: string, key: string): Promise<void> {
    try {
      const first = await mkdir(dir, { recursive: true, mode: dirMode });
      if (first === undefined) return;
      for (let d = dir; ; d = dirname(d)) {
        await fsyncDir(dirname(d));
        if (d === first || dirname(d) === d) break;
      }
    } catch (err) {
      throw this.failure('cannot create directory', key, err);
    }
  }

  /** Reopens a staged file, trusting only its checkpointed length (the caller re-hashes it through `readStaged`). */
  private async openStaged(partPath: string): Promise<{ handle: FileHandle; stagedBytes: number }> {
    let handle: FileHandle;
    try {
      handle = await open(partPath, constants.O_RDWR);
    } catch (err) {
      if (systemCode(err) !== 'ENOENT') throw err;
      return { handle: await open(partPath, 'w', fileMode), stagedBytes: 0 };
    }
    const durable = await readCheckpoint(`${partPath}.len`);
    const size = (await handle.stat()).size;
    const stagedBytes = Math.min(durable, size);
    await handle.truncate(stagedBytes);
    return { handle, stagedBytes };
  }

  private failure(what: string, key: string, err: unknown): CxrecError {
    if (err instanceof CxrecError) return err;
    const code = systemCode(err);
    const hint =
      code === 'EACCES' || code === 'EPERM'
        ? '; check this user may write the storage directory'
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? '; the disk is full'
          : '';
    return new CxrecError('storage', `${what} under ${this.location} (${code ?? 'error'})${hint}`, {
      cause: err,
      retryable: code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS',
      context: { key },
    });
  }
}

interface LocalStagedUploadInit {
  key: string;
  location: string;
  target: string;
  partPath: string;
  lock: StagingLock;
  handle: FileHandle;
  stagedBytes: number;
  resumeToken: string;
  ensureDir(dir: string): Promise<void>;
}

class LocalStagedUpload implements StagedUpload {
  readonly resumeToken: string;
  readonly stagedBytes: number;
  private written: number;
  private checkpointed: number;
  private done = false;
  /** Serialises writes: positional writes from overlapping calls would race the hash. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly s: LocalStagedUploadInit) {
    this.resumeToken = s.resumeToken;
    this.stagedBytes = s.stagedBytes;
    this.written = s.stagedBytes;
    this.checkpointed = s.stagedBytes;
  }

  /** The staged prefix (empty when nothing was staged). */
  readStaged(options?: SignalOption): Readable {
    if (this.stagedBytes === 0) return Readable.from([]);
    return createReadStream(this.s.partPath, {
      start: 0,
      end: this.stagedBytes - 1,
      ...(options?.signal ? { signal: options.signal } : {}),
    });
  }

  get bytesWritten(): number {
    return this.written;
  }

  write(chunk: Buffer, options?: SignalOption): Promise<void> {
    const run = this.queue.then(() => this.writeNow(chunk, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(chunk: Buffer, options?: SignalOption): Promise<void> {
    assertOpen(this.done, this.context);
    throwIfAborted(options?.signal, { key: this.s.key });
    try {
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await this.s.handle.write(
          chunk,
          offset,
          chunk.length - offset,
          this.written + offset,
        );
        offset += bytesWritten;
      }
    } catch (err) {
      // Nothing counted: the next write lands at the same offset and
      // overwrites whatever part of this chunk reached the file.
      throw failure('cannot write staging file', this.s.key, this.s.location, err);
    }
    this.written += chunk.length;
    if (this.written - this.checkpointed >= checkpointEveryBytes) await this.checkpoint();
  }

  /** Makes the staged bytes durable and records how many there are. */
  private async checkpoint(): Promise<void> {
    try {
      await this.s.handle.datasync();
      const lenPath = `${this.s.partPath}.len`;
      const temp = `${lenPath}.${randomBytes(4).toString('hex')}`;
      await writeFile(temp, String(this.written), { mode: fileMode });
      if (!(await this.ownsStagingPath())) {
        await unlinkIfPresent(temp);
        throw new CxrecError('storage', 'the staging file was taken over by another process', {
          context: this.context,
        });
      }
      await rename(temp, lenPath);
      this.checkpointed = this.written;
    } catch (err) {
      throw failure('cannot checkpoint staging file', this.s.key, this.s.location, err);
    }
  }

  async commit(options: CommitOptions): Promise<ObjectInfo> {
    await this.queue;
    assertOpen(this.done, this.context);
    throwIfAborted(options.signal, { key: this.s.key });
    // Size only: the md5 is the caller's, computed over the very buffers
    // written here (and checked against CXone's ETag when that carries an
    // md5); hashing them a second time cost a fifth of an export's CPU and
    // could catch no other fault.
    assertCommitSize(this.written, options, this.context);
    try {
      const { handle } = this.s;
      // A failed write may have left bytes past the counted end.
      await handle.truncate(this.written);
      const size = (await handle.stat()).size;
      if (size !== this.written) {
        throw new CxrecError('integrity', `staging file holds ${size} bytes, expected ${this.written}`, {
          context: this.context,
        });
      }
      await handle.sync();
      // Rename only the file this handle wrote, under a lock still ours: a
      // takeover (we seemed gone) put another file at the path.
      if (!(await this.ownsStagingPath()) || !(await this.s.lock.stillHeld())) {
        throw new CxrecError(
          'storage',
          'the staging file was taken over by another process; not committing',
          {
            context: this.context,
          },
        );
      }
      await handle.close();
      this.done = true;
      await this.s.ensureDir(dirname(this.s.target));
      await rename(this.s.partPath, this.s.target);
      await fsyncDir(dirname(this.s.target));
      await unlinkIfPresent(`${this.s.partPath}.len`);
    } catch (err) {
      throw failure('cannot commit object', this.s.key, this.s.location, err);
    } finally {
      if (this.done) await this.s.lock.release();
    }
    return {
      key: this.s.key,
      sizeBytes: this.written,
      md5: options.md5.toLowerCase(),
      sha256: options.sha256.toLowerCase(),
    };
  }

  async park(): Promise<void> {
    await this.queue;
    if (this.done) return;
    this.done = true;
    try {
      // After a takeover the staged bytes are another owner's business now.
      if (this.written > this.checkpointed && (await this.ownsStagingPath())) await this.checkpoint();
    } finally {
      await this.s.handle.close().catch(() => undefined);
      await this.s.lock.release();
    }
  }

  async abort(): Promise<void> {
    await this.queue;
    if (this.done) return;
    this.done = true;
    try {
      // Only our own file: after a takeover the path names another's.
      const ours = await this.ownsStagingPath().catch(() => false);
      await this.s.handle.close().catch(() => undefined);
      if (ours) {
        await unlinkIfPresent(this.s.partPath);
        await unlinkIfPresent(`${this.s.partPath}.len`);
      }
    } finally {
      await this.s.lock.release();
    }
  }

  /** Whether the staging path still names the file our handle writes (same device and inode). */
  private async ownsStagingPath(): Promise<boolean> {
    const [mine, there] = await Promise.all([
      this.s.handle.stat(),
      stat(this.s.partPath).catch((err: unknown) => {
        if (systemCode(err) === 'ENOENT') return undefined;
        throw err;
      }),
    ]);
    return there !== undefined && there.dev === mine.dev && there.ino === mine.ino;
  }

  private get context(): { key: string; location: string } {
    return { key: this.s.key, location: this.s.location };
  }
}

function failure(what: string, key: string, location: string, err: unknown): CxrecError {
  if (err instanceof CxrecError) return err;
  const code = systemCode(err);
  return new CxrecError('storage', `${what} under ${location} (${code ?? 'error'})`, {
    cause: err,
    context: { key },
  });
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readCheckpoint(lenPath: string): Promise<number> {
  try {
    const n = Number((await readFile(lenPath, 'utf8')).trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}
