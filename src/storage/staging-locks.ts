/**
 * Who owns a staging file in local storage's `.partial/`, and when a
 * leftover there may go. Every decision about owners lives here, so that
 * changing how an owner is identified is a change to this file alone.
 *
 * Today an owner is a process: its pid and host name. An upload's lock is
 * `<name>.part.lock`, created with O_EXCL and holding `{"pid","host"}`; a
 * temp file names its writer in its own name (`<kind>-<pid>-<host tag>-…`).
 * A lock whose process is gone (same host, pid not alive) is taken over; an
 * owner on another host (a NAS mounted by two machines: its pid means
 * nothing here) is taken as gone only after an hour without a write.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';

import { CxrecError, systemCode } from '../errors.js';
import { throwIfAborted } from './commit-check.js';
import { partialDirName } from './keys.js';

const lockFileMode = 0o640;

/** Lock files held by this process, so a lock naming our own pid is known live or stale. */
const heldLocks = new Set<string>();

/**
 * How long a staging leftover must have gone untouched before the sweep
 * removes it when the owner's liveness cannot be checked: a lock written on
 * another host or one that cannot be read. A live writer touches its `.part`
 * with every chunk and its `.len` every 32 MiB; its longest pause is a
 * backoff (capped at 60 s) or a URL renewal, so an hour without a write
 * means nobody is writing.
 */
const unknownOwnerStaleAfterMs = 60 * 60 * 1000;

/**
 * Names the host in temp-file names without putting the host name itself
 * in a file name (it may hold characters a file system refuses).
 */
const hostTag = createHash('sha256').update(hostname(), 'utf8').digest('hex').slice(0, 8);

/** `<32 hex>.part` and its `.lock`, `.len` and `.len.<8 hex>` (a checkpoint being written). */
const uploadFilePattern = /^([0-9a-f]{32}\.part)(?:\.lock|\.len(?:\.[0-9a-f]{8})?)?$/;
/** `small-`/`probe-` temp files, named `<kind>-<pid>-<host tag>-<16 hex>.tmp`. */
const tempFilePattern = /^(?:small|probe)-(\d+)-([0-9a-f]{8})-[0-9a-f]{16}\.tmp$/;
/** The same kinds named by older versions (`<kind>-<16 hex>.tmp`): no owner to check. */
const ownerlessTempFilePattern = /^(?:small|probe)-[0-9a-f]{16}\.tmp$/;

interface LockOwner {
  pid: number;
  host: string;
}

/** A held lock on one staging file. */
export interface StagingLock {
  release(): Promise<void>;
}

export interface StagingLocksOptions {
  /** `<root>/.partial`. */
  partialDir: string;
  /** The store's location, for messages. */
  location: string;
  /** Turns a file-system error into the store's `CxrecError` (a CxrecError passes through). */
  failure(what: string, key: string, err: unknown): CxrecError;
}

export class StagingLocks {
  constructor(private readonly o: StagingLocksOptions) {}

  /**
   * Takes the O_EXCL lock of the staging file `partPath`. A lock left by a
   * process that is gone is taken over. `callerOwnsKey` is the caller's word
   * (it passes the resume token, or discards) that its ledger lease makes it
   * the only writer; we then also take over a lock held on another host,
   * whose liveness we cannot check.
   */
  async acquire(partPath: string, key: string, callerOwnsKey: boolean): Promise<StagingLock> {
    const lockPath = `${partPath}.lock`;
    const me = currentOwner();
    const context = { key, location: this.o.location };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeFile(lockPath, JSON.stringify(me), { flag: 'wx', mode: lockFileMode });
        heldLocks.add(lockPath);
        return { release: () => releaseLock(lockPath) };
      } catch (err) {
        if (systemCode(err) !== 'EEXIST') throw this.o.failure('cannot create lock file', key, err);
      }
      const owner = await readLockOwner(lockPath);
      if (owner === 'fresh') {
        // Created but not written yet: a live owner writes it within
        // milliseconds, and one killed in between leaves it empty, which
        // counts as stale once 10 s old. Either way waiting decides; failing
        // instead would use up the job's attempts (fast backoffs retry
        // within the 10 s) and end it `failed`.
        await delay(100);
        attempt--;
        continue;
      }
      const stale =
        owner === undefined ||
        (owner.host === me.host
          ? owner.pid === me.pid
            ? !heldLocks.has(lockPath)
            : !processAlive(owner.pid)
          : callerOwnsKey);
      if (!stale) {
        throw new CxrecError('storage', 'another upload of this key is in progress; try again later', {
          context: { ...context, lockPid: owner.pid, lockHost: owner.host },
        });
      }
      await unlinkIfPresent(lockPath);
    }
    throw new CxrecError('storage', 'could not take the staging lock (it kept being re-created)', {
      context,
    });
  }

  /**
   * Removes `.partial/` leftovers no live process owns and no ledger row
   * will resume (`keepTokens`): an upload's `.part`, `.len` and `.lock`,
   * and `small-`/`probe-` temp files. Files that are not ours are left
   * alone. Returns the number of files removed.
   */
  async sweep(options: { signal?: AbortSignal; keepTokens: ReadonlySet<string> }): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.o.partialDir);
    } catch (err) {
      if (systemCode(err) === 'ENOENT') return 0;
      throw this.o.failure('cannot list the staging directory', partialDirName, err);
    }
    const uploads = new Map<string, string[]>();
    const temps: string[] = [];
    for (const name of names) {
      const token = uploadFilePattern.exec(name)?.[1];
      if (token !== undefined) uploads.set(token, [...(uploads.get(token) ?? []), name]);
      else if (tempFilePattern.test(name) || ownerlessTempFilePattern.test(name)) temps.push(name);
    }
    let removed = 0;
    try {
      for (const [token, files] of uploads) {
        throwIfAborted(options.signal, { key: partialDirName });
        if (!options.keepTokens.has(token)) removed += await this.sweepUpload(token, files);
      }
      for (const name of temps) {
        throwIfAborted(options.signal, { key: partialDirName });
        if (await this.tempAbandoned(name)) {
          await unlinkIfPresent(join(this.o.partialDir, name));
          removed++;
        }
      }
    } catch (err) {
      throw this.o.failure('cannot sweep the staging directory', partialDirName, err);
    }
    return removed;
  }

  /** Removes one upload's staging files unless a live process owns them; returns how many went. */
  private async sweepUpload(token: string, files: readonly string[]): Promise<number> {
    const lockPath = join(this.o.partialDir, `${token}.lock`);
    if (heldLocks.has(lockPath)) return 0;
    const me = currentOwner();
    let removed = 0;
    if (files.includes(`${token}.lock`)) {
      const owner = await readLockFile(lockPath);
      if (owner === 'gone')
        return this.sweepUpload(
          token,
          files.filter((f) => f !== `${token}.lock`),
        );
      const ownerGone =
        owner !== 'unreadable' && owner.host === me.host
          ? owner.pid === me.pid || !processAlive(owner.pid)
          : await untouchedFor(
              files.map((f) => join(this.o.partialDir, f)),
              unknownOwnerStaleAfterMs,
            );
      if (!ownerGone) return 0;
      // The same check-then-unlink as acquire: a process that took the lock
      // over in between would see its commit's rename fail, loudly.
      await unlinkIfPresent(lockPath);
      removed++;
    }
    // Held while removing, so no writer can open this staging file meanwhile.
    try {
      await writeFile(lockPath, JSON.stringify(me), { flag: 'wx', mode: lockFileMode });
    } catch (err) {
      if (systemCode(err) === 'EEXIST') return removed;
      throw err;
    }
    heldLocks.add(lockPath);
    try {
      for (const name of files) {
        if (name === `${token}.lock`) continue;
        await unlinkIfPresent(join(this.o.partialDir, name));
        removed++;
      }
    } finally {
      await releaseLock(lockPath);
    }
    return removed;
  }

  /** Whether a temp file's writer is gone (dead pid on this host, or untouched an hour). */
  private async tempAbandoned(name: string): Promise<boolean> {
    const match = tempFilePattern.exec(name);
    if (match?.[2] === hostTag) {
      const pid = Number(match[1]);
      return pid !== process.pid && !processAlive(pid);
    }
    return untouchedFor([join(this.o.partialDir, name)], unknownOwnerStaleAfterMs);
  }
}

/** `<kind>-<pid>-<host tag>-<16 hex>.tmp`: lets the sweep tell a live writer's temp file from a dead one's. */
export function stagingTempName(kind: 'small' | 'probe'): string {
  return `${kind}-${process.pid}-${hostTag}-${randomBytes(8).toString('hex')}.tmp`;
}

/** Removes `path`; one already gone is fine. */
export async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (systemCode(err) !== 'ENOENT') throw err;
  }
}

function currentOwner(): LockOwner {
  return { pid: process.pid, host: hostname() };
}

async function releaseLock(lockPath: string): Promise<void> {
  heldLocks.delete(lockPath);
  await unlinkIfPresent(lockPath);
}

/**
 * Who holds a lock: `undefined` when nobody does any more (the file is
 * unreadable and old: a crash between creating and filling it), `'fresh'`
 * when it is being created right now (empty but young).
 */
async function readLockOwner(lockPath: string): Promise<LockOwner | 'fresh' | undefined> {
  const owner = await readLockFile(lockPath);
  if (owner === 'gone') return undefined;
  if (owner !== 'unreadable') return owner;
  try {
    return Date.now() - (await stat(lockPath)).mtimeMs < 10_000 ? 'fresh' : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file's owner, `'unreadable'` when it holds no owner (half-written), `'gone'` when it is not there. */
async function readLockFile(lockPath: string): Promise<LockOwner | 'unreadable' | 'gone'> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (err) {
    return systemCode(err) === 'ENOENT' ? 'gone' : 'unreadable';
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'pid' in parsed &&
      'host' in parsed &&
      typeof parsed.pid === 'number' &&
      typeof parsed.host === 'string'
    ) {
      return { pid: parsed.pid, host: parsed.host };
    }
  } catch {
    // Half-written: no owner to check.
  }
  return 'unreadable';
}

/** Whether none of `paths` (those that exist) was modified within the last `ms`. */
async function untouchedFor(paths: readonly string[], ms: number): Promise<boolean> {
  let newest = 0;
  for (const path of paths) {
    try {
      newest = Math.max(newest, (await stat(path)).mtimeMs);
    } catch (err) {
      if (systemCode(err) !== 'ENOENT') throw err;
    }
  }
  return Date.now() - newest > ms;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return systemCode(err) === 'EPERM';
  }
}
