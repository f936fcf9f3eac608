/**
 * One working process per SQLite ledger. A SQLite ledger's rate budget
 * lives in its process (seeded from the grant log at start), so a second
 * `export` or `run` on the same file would spend a second, separate
 * budget and meet 429s; PostgreSQL shares both the work and the budget.
 * So the second one is refused (exit 2, naming PostgreSQL) instead.
 *
 * The claim is a lock file beside the ledger, `<ledger>.process`, created
 * exclusively and holding `host pid random`. Its modification time is a
 * heartbeat, touched every 10 s. A claim is taken over when its holder is
 * gone: in our own pid namespace (`owners.ts`) a pid that no longer runs
 * (so a rerun right after a SIGKILL starts at once), anywhere a heartbeat
 * older than a minute (a crash on another machine sharing the file, or
 * another container, whose pid means nothing here even with our host name). Reading commands (`status`, `manifest`, `verify`)
 * take no claim and run beside it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hostname } from 'node:os';

import { CxrecError } from '../errors.js';
import { currentKernel, processAlive } from '../owners.js';

const heartbeatMs = 10_000;
/** A heartbeat older than this means its holder is gone. */
const staleMs = 60_000;

export interface SoleProcessClaim {
  release(): Promise<void>;
}

/** Claims the SQLite ledger at `ledgerPath` for this process, or throws `config_invalid` naming the holder. */
export async function claimSoleProcess(ledgerPath: string): Promise<SoleProcessClaim> {
  const lockPath = `${ledgerPath}.process`;
  // The fourth word names our pid namespace (`owners.ts`): only a process of the same one
  // may judge our pid. Containers share host names and pid 1.
  const mine = `${hostname()} ${process.pid} ${randomBytes(6).toString('hex')} ${currentKernel() ?? '-'}\n`;
  // The ledger creates its folder too; the claim comes first.
  await mkdir(dirname(lockPath), { recursive: true }).catch(() => undefined);
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lockPath, mine, { flag: 'wx', mode: 0o640 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw lockError(lockPath, err);
    }
    const holder = await readHolder(lockPath);
    if (holder === undefined) continue; // gone meanwhile: try again
    if (!holder.gone) {
      throw new CxrecError(
        'config_invalid',
        `CXREC_STATE ${ledgerPath} is in use by another cxrec process (${holder.description}); ` +
          'a SQLite ledger serves one export or run at a time: use PostgreSQL ' +
          '(CXREC_STATE=postgres://...) for several processes',
      );
    }
    // Its holder is gone: take over, unless another process did first.
    await unlink(lockPath).catch(() => undefined);
  }
  const timer = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, heartbeatMs);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      // Only our own claim: a process that took over a stale one keeps it.
      const content = await readFile(lockPath, 'utf8').catch(() => undefined);
      if (content === mine) await unlink(lockPath).catch(() => undefined);
    },
  };
}

async function readHolder(lockPath: string): Promise<{ gone: boolean; description: string } | undefined> {
  let content: string;
  let mtimeMs: number;
  try {
    [content, { mtimeMs }] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
  } catch {
    return undefined;
  }
  const [host, pidText, , kernel] = content.trim().split(' ');
  const pid = Number(pidText);
  const description = `host ${host ?? '?'}, pid ${pidText ?? '?'}`;
  if (Date.now() - mtimeMs > staleMs) return { gone: true, description };
  // A claim of an older cxrec names no pid namespace: its host name is all there is to go by.
  const sameNamespace =
    kernel === undefined ? host === hostname() : kernel !== '-' && kernel === currentKernel();
  if (sameNamespace && Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) {
    return { gone: true, description };
  }
  return { gone: false, description };
}

function lockError(lockPath: string, cause: unknown): CxrecError {
  return new CxrecError('ledger', `cannot claim the ledger for this process (${lockPath})`, { cause });
}
