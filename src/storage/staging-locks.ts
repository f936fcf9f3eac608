/**
 * Who owns a staging file in local storage's `.partial/`, and when a
 * leftover there may go. Every decision about owners of staging files lives
 * here; who counts as gone is `owners.ts`'s rule.
 *
 * An owner is a random id (one per store, so two containers sharing a host
 * name and pid 1 differ). Each store that stages anything keeps a heartbeat
 * file, `.partial/owner-<id>.beat`, holding its owner and rewritten every
 * few seconds. An upload's lock is `<name>.part.lock`, created with O_EXCL
 * and holding the owner; a temp file names its owner in its own name
 * (`<kind>-<owner id>-<16 hex>.tmp`). An owner is gone when its heartbeat
 * file is missing or was last written more than `ownerExpiresAfterMs` ago,
 * both measured on the file server's clock (our own heartbeat's
 * modification time, written just before, is "now"), so hosts sharing a NAS
 * need no agreement between their clocks; or, at once, when it ran in our
 * pid namespace and its pid is gone.
 *
 * A lock is removed only by its owner, or taken over once its owner is
 * gone. Taking one over never reuses the old owner's staging file: its
 * durable prefix is copied to a new file that replaces it, so a writer that
 * only seemed gone (a stalled NAS mount) writes to a file nobody reads.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, readdir, readFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';

import { CxrecError, systemCode } from '../errors.js';
import {
  heartbeatExpired,
  ownerHeartbeatMs,
  parseOwner,
  processAlive,
  processOwner,
  provablyGone,
  type Owner,
} from '../owners.js';
import { throwIfAborted } from './commit-check.js';
import { partialDirName } from './keys.js';

const lockFileMode = 0o640;

/** Lock files held in this process, per owner id (two stores of one owner share them). */
const heldLocksByOwner = new Map<string, Set<string>>();

/**
 * How long a staging leftover must have gone untouched before the sweep
 * removes it when its owner cannot be known: a lock written by an older
 * cxrec, or one that cannot be read. A live writer touches its `.part`
 * with every chunk and its `.len` every 32 MiB; its longest pause is a
 * backoff (capped at 60 s) or a URL renewal, so an hour without a write
 * means nobody is writing. Heartbeat files of owners gone this long go too.
 */
const unknownOwnerStaleAfterMs = 60 * 60 * 1000;

/** `<32 hex>.part` and its `.lock`, `.len`, `.len.<8 hex>` (a checkpoint being written) and `.take.<8 hex>` (a takeover's copy). */
const uploadFilePattern = /^([0-9a-f]{32}\.part)(?:\.lock|\.len(?:\.[0-9a-f]{8})?|\.take\.[0-9a-f]{8})?$/;
const uuid = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
/** `small-`/`probe-` temp files, named `<kind>-<owner id>-<16 hex>.tmp`. */
const tempFilePattern = new RegExp(`^(?:small|probe)-(${uuid})-[0-9a-f]{16}\\.tmp$`);
/** The same kinds named by older versions (`<kind>-<16 hex>.tmp`, `<kind>-<pid>-<host tag>-<16 hex>.tmp`): no owner to check. */
const ownerlessTempFilePattern = /^(?:small|probe)-(?:\d+-[0-9a-f]{8}-)?[0-9a-f]{16}\.tmp$/;
/** An owner's heartbeat file. */
const beatFilePattern = new RegExp(`^owner-(${uuid})\\.beat$`);

/** A lock written by an older cxrec: a host name and a pid. */
interface LegacyOwner {
  legacy: true;
  pid: number;
  host: string;
}

/** A held lock on one staging file. */
export interface StagingLock {
  /** True when the lock was taken over from another owner that is gone (its staging file was replaced by a copy). */
  readonly tookOver: boolean;
  /** Whether the lock file still names this lock's owner. */
  stillHeld(): Promise<boolean>;
  /** Removes the lock file if it still names this owner (never another's). */
  release(): Promise<void>;
}

export interface StagingLocksOptions {
  /** `<root>/.partial`. */
  partialDir: string;
  /** The store's location, for messages. */
  location: string;
  /** Turns a file-system error into the store's `CxrecError` (a CxrecError passes through). */
  failure(what: string, key: string, err: unknown): CxrecError;
  /** Who this store is. @default processOwner() */
  owner?: Owner;
}

export class StagingLocks {
  /** Lock files held by this owner now. */
  private readonly heldLocks: Set<string>;
  private readonly me: Owner;
  private readonly mine: string;
  private beatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  /** Locks, temp files and clock readings in progress: the heartbeat file exists while this is above 0. */
  private holds = 0;

  constructor(private readonly o: StagingLocksOptions) {
    this.me = o.owner ?? processOwner();
    this.mine = JSON.stringify(this.me);
    const held = heldLocksByOwner.get(this.me.id) ?? new Set<string>();
    heldLocksByOwner.set(this.me.id, held);
    this.heldLocks = held;
  }

  private get beatPath(): string {
    return join(this.o.partialDir, `owner-${this.me.id}.beat`);
  }

  /** Writes our heartbeat file now (the file system sets its modification time). */
  private beat(): Promise<void> {
    const run = writeFile(this.beatPath, this.mine, { mode: lockFileMode });
    this.beating = run.catch(() => undefined);
    return run;
  }

  /**
   * Holds the heartbeat: it beats from before this owner's first staging
   * file until its last one is gone (`unhold`), so an idle `.partial/` is
   * empty.
   */
  private async hold(): Promise<void> {
    this.holds++;
    try {
      if (this.beatTimer === undefined) {
        await this.beat();
        this.beatTimer ??= setInterval(() => void this.beat().catch(() => undefined), ownerHeartbeatMs);
        this.beatTimer.unref();
      }
    } catch (err) {
      await this.unhold();
      throw err;
    }
  }

  private async unhold(): Promise<void> {
    this.holds = Math.max(0, this.holds - 1);
    if (this.holds > 0 || this.beatTimer === undefined) return;
    clearInterval(this.beatTimer);
    this.beatTimer = undefined;
    await this.beating;
    if (this.holds === 0) await unlinkIfPresent(this.beatPath).catch(() => undefined);
  }

  /** The file server's clock: our heartbeat's modification time, written just now. */
  private async fileNow(): Promise<number> {
    await this.hold();
    try {
      await this.beat();
      return (await stat(this.beatPath)).mtimeMs;
    } finally {
      await this.unhold();
    }
  }

  /** Stops the heartbeat and removes its file (the store is closing; its uploads are settled). */
  async close(): Promise<void> {
    this.holds = 1;
    await this.unhold();
  }

  /**
   * Runs `fn` with a temp file name naming this owner, so the sweep can
   * tell a live writer's file from a gone one's; the heartbeat is held
   * meanwhile.
   */
  async withTempName<T>(kind: 'small' | 'probe', fn: (name: string) => Promise<T>): Promise<T> {
    await this.hold();
    try {
      return await fn(`${kind}-${this.me.id}-${randomBytes(8).toString('hex')}.tmp`);
    } finally {
      await this.unhold();
    }
  }

  /**
   * Whether the owner with heartbeat file `owner-<id>.beat` is gone: `owner`
   * (from its lock) proves it at once when it ran in our pid namespace and
   * its pid is gone; else its heartbeat file is missing or expired.
   */
  private async ownerGone(id: string, owner?: Owner): Promise<boolean> {
    if (id === this.me.id) return false;
    if (owner && provablyGone(owner)) return true;
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(join(this.o.partialDir, `owner-${id}.beat`))).mtimeMs;
    } catch (err) {
      if (systemCode(err) === 'ENOENT') return true;
      throw err;
    }
    return heartbeatExpired((await this.fileNow()) - mtimeMs);
  }

  /**
   * Takes the O_EXCL lock of the staging file `partPath`. A lock whose owner
   * is gone is taken over, and then the staging file is replaced by a copy
   * of its first `durableBytes(partPath)` bytes (`detach`), so the gone
   * owner's open handle, should it still write, no longer reaches it. A
   * live owner's lock is never taken: the caller gets a retryable error.
   */
  async acquire(partPath: string, key: string): Promise<StagingLock> {
    const lockPath = `${partPath}.lock`;
    await this.hold().catch((err: unknown) => {
      throw this.o.failure('cannot write the staging heartbeat', key, err);
    });
    try {
      return await this.take(lockPath, partPath, key);
    } catch (err) {
      await this.unhold();
      throw err;
    }
  }

  private async take(lockPath: string, partPath: string, key: string): Promise<StagingLock> {
    const context = { key, location: this.o.location };
    let tookOver = false;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeFile(lockPath, this.mine, { flag: 'wx', mode: lockFileMode });
        this.heldLocks.add(lockPath);
        return this.held(lockPath, tookOver);
      } catch (err) {
        if (systemCode(err) !== 'EEXIST') throw this.o.failure('cannot create lock file', key, err);
      }
      const read = await readLockOwner(lockPath);
      if (read === 'fresh') {
        // Created but not written yet: a live owner writes it within
        // milliseconds, and one killed in between leaves it empty, which
        // counts as stale once 10 s old. Either way waiting decides; failing
        // instead would use up the job's attempts (fast backoffs retry
        // within the 10 s) and end it `failed`.
        await delay(100);
        attempt--;
        continue;
      }
      const stale = await this.lockStale(lockPath, read?.owner, () => untouchedFor([partPath, lockPath]));
      if (!stale) {
        const owner = read?.owner;
        throw new CxrecError('storage', 'another upload of this key is in progress; try again later', {
          context: {
            ...context,
            ...(owner ? { lockPid: owner.pid, lockHost: owner.host } : {}),
            ...(owner && !('legacy' in owner) ? { lockOwner: owner.id } : {}),
          },
        });
      }
      // Removed only if it still holds what we judged gone (a new owner's lock stays).
      if (read === undefined || (await readFile(lockPath, 'utf8').catch(() => undefined)) === read.text) {
        await unlinkIfPresent(lockPath);
        if (read !== undefined) await this.forgetOwner(read.owner);
      }
      tookOver = true;
    }
    throw new CxrecError('storage', 'could not take the staging lock (it kept being re-created)', {
      context,
    });
  }

  private held(lockPath: string, tookOver: boolean): StagingLock {
    return {
      tookOver,
      stillHeld: async () =>
        this.heldLocks.has(lockPath) &&
        (await readFile(lockPath, 'utf8').catch(() => undefined)) === this.mine,
      release: async () => {
        if (!this.heldLocks.has(lockPath)) return;
        await this.release(lockPath);
        await this.unhold();
      },
    };
  }

  /** Whether a lock naming `owner` (undefined: unreadable or gone) may be removed. */
  private async lockStale(
    lockPath: string,
    owner: Owner | LegacyOwner | undefined,
    untouched: () => Promise<boolean>,
  ): Promise<boolean> {
    if (owner === undefined) return true;
    if ('legacy' in owner) {
      // An older cxrec's lock: its pid can be checked only on its own host.
      return owner.host === hostname() ? !processAlive(owner.pid) : untouched();
    }
    if (owner.id === this.me.id) return !this.heldLocks.has(lockPath);
    return this.ownerGone(owner.id, owner);
  }

  /** Removes the heartbeat file of an owner found gone (another owner's, never ours). */
  private async forgetOwner(owner: Owner | LegacyOwner): Promise<void> {
    if ('legacy' in owner || owner.id === this.me.id) return;
    await unlinkIfPresent(join(this.o.partialDir, `owner-${owner.id}.beat`));
  }

  /** Removes the lock at `lockPath` if it still names this owner. */
  private async release(lockPath: string): Promise<void> {
    this.heldLocks.delete(lockPath);
    const text = await readFile(lockPath, 'utf8').catch(() => undefined);
    if (text === this.mine) await unlinkIfPresent(lockPath);
  }

  /**
   * Replaces the staging file `partPath` by a copy of its first
   * `keepBytes` bytes, after a takeover: the copy is a new file, so the
   * previous owner's handle (should it still write) reaches only the old one.
   */
  async detach(partPath: string, keepBytes: number): Promise<void> {
    const copy = `${partPath}.take.${randomBytes(4).toString('hex')}`;
    try {
      await copyFile(partPath, copy, constants.COPYFILE_FICLONE);
    } catch (err) {
      if (systemCode(err) === 'ENOENT') return;
      throw err;
    }
    try {
      await truncate(copy, Math.min(keepBytes, (await stat(copy)).size));
      await rename(copy, partPath);
    } catch (err) {
      await unlinkIfPresent(copy);
      throw err;
    }
  }

  /**
   * Removes `.partial/` leftovers no live owner holds and no ledger row
   * will resume (`keepTokens`): an upload's `.part`, `.len` and `.lock`,
   * `small-`/`probe-` temp files, and heartbeat files of owners gone an
   * hour. Files that are not ours are left alone. Returns the number of
   * files removed.
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
    const beats: string[] = [];
    for (const name of names) {
      const token = uploadFilePattern.exec(name)?.[1];
      if (token !== undefined) uploads.set(token, [...(uploads.get(token) ?? []), name]);
      else if (tempFilePattern.test(name) || ownerlessTempFilePattern.test(name)) temps.push(name);
      else if (beatFilePattern.test(name)) beats.push(name);
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
      for (const name of beats) {
        // Owners found gone: their locks and temp files went above.
        const id = beatFilePattern.exec(name)?.[1];
        if (id !== undefined && id !== this.me.id && (await this.ownerGone(id, await this.beatOwner(id)))) {
          await unlinkIfPresent(join(this.o.partialDir, name));
          removed++;
        }
      }
    } catch (err) {
      throw this.o.failure('cannot sweep the staging directory', partialDirName, err);
    }
    return removed;
  }

  /** Removes one upload's staging files unless a live owner holds them; returns how many went. */
  private async sweepUpload(token: string, files: readonly string[]): Promise<number> {
    const lockPath = join(this.o.partialDir, `${token}.lock`);
    if (this.heldLocks.has(lockPath)) return 0;
    let removed = 0;
    if (files.includes(`${token}.lock`)) {
      const read = await readLockFile(lockPath);
      if (read === 'gone')
        return this.sweepUpload(
          token,
          files.filter((f) => f !== `${token}.lock`),
        );
      const owner = read === 'unreadable' ? undefined : read.owner;
      const untouched = (): Promise<boolean> => untouchedFor(files.map((f) => join(this.o.partialDir, f)));
      const gone = owner === undefined ? await untouched() : await this.lockStale(lockPath, owner, untouched);
      if (!gone) return 0;
      // Removed only if it still holds what we judged gone.
      if (read !== 'unreadable' && (await readFile(lockPath, 'utf8').catch(() => undefined)) !== read.text) {
        return 0;
      }
      await unlinkIfPresent(lockPath);
      if (owner !== undefined) await this.forgetOwner(owner);
      removed++;
    }
    // Held while removing, so no writer can open this staging file meanwhile.
    await this.hold();
    try {
      try {
        await writeFile(lockPath, this.mine, { flag: 'wx', mode: lockFileMode });
      } catch (err) {
        if (systemCode(err) === 'EEXIST') return removed;
        throw err;
      }
      this.heldLocks.add(lockPath);
      try {
        for (const name of files) {
          if (name === `${token}.lock`) continue;
          await unlinkIfPresent(join(this.o.partialDir, name));
          removed++;
        }
      } finally {
        await this.release(lockPath);
      }
    } finally {
      await this.unhold();
    }
    return removed;
  }

  /** Whether a temp file's owner is gone (or, for an ownerless name, it was untouched an hour). */
  private async tempAbandoned(name: string): Promise<boolean> {
    const id = tempFilePattern.exec(name)?.[1];
    if (id === undefined) return untouchedFor([join(this.o.partialDir, name)]);
    return this.ownerGone(id, await this.beatOwner(id));
  }

  /** The owner a heartbeat file names, if it can be read. */
  private async beatOwner(id: string): Promise<Owner | undefined> {
    const text = await readFile(join(this.o.partialDir, `owner-${id}.beat`), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : parseJsonOwner(text);
  }
}

/** Removes `path`; one already gone is fine. */
export async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (systemCode(err) !== 'ENOENT') throw err;
  }
}

interface LockContent {
  owner: Owner | LegacyOwner;
  /** The lock file's text, to check it did not change before removing it. */
  text: string;
}

/**
 * Who holds a lock: `undefined` when nobody does any more (the file is
 * unreadable and old: a crash between creating and filling it), `'fresh'`
 * when it is being created right now (empty but young).
 */
async function readLockOwner(lockPath: string): Promise<LockContent | 'fresh' | undefined> {
  const read = await readLockFile(lockPath);
  if (read === 'gone') return undefined;
  if (read !== 'unreadable') return read;
  try {
    return Date.now() - (await stat(lockPath)).mtimeMs < 10_000 ? 'fresh' : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file's owner, `'unreadable'` when it holds no owner (half-written), `'gone'` when it is not there. */
async function readLockFile(lockPath: string): Promise<LockContent | 'unreadable' | 'gone'> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (err) {
    return systemCode(err) === 'ENOENT' ? 'gone' : 'unreadable';
  }
  const owner = parseJsonOwner(text) ?? parseLegacyOwner(text);
  return owner ? { owner, text } : 'unreadable';
}

function parseJsonOwner(text: string): Owner | undefined {
  try {
    return parseOwner(JSON.parse(text));
  } catch {
    return undefined; // half-written
  }
}

function parseLegacyOwner(text: string): LegacyOwner | undefined {
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
      return { legacy: true, pid: parsed.pid, host: parsed.host };
    }
  } catch {
    // Half-written: no owner to check.
  }
  return undefined;
}

/**
 * Whether none of `paths` (those that exist) was modified within the last
 * hour before `now` (the file server's clock when given, else ours).
 */
async function untouchedFor(paths: readonly string[], now = Date.now()): Promise<boolean> {
  let newest = 0;
  for (const path of paths) {
    try {
      newest = Math.max(newest, (await stat(path)).mtimeMs);
    } catch (err) {
      if (systemCode(err) !== 'ENOENT') throw err;
    }
  }
  return now - newest > unknownOwnerStaleAfterMs;
}
