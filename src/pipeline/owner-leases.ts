/**
 * A working process in the ledger: its heartbeat (the `processes` table),
 * and the taking back of jobs whose owner is gone. Who counts as gone is
 * `owners.ts`'s call: a heartbeat expired on the ledger's clock, or a pid
 * that no longer runs in our own pid namespace. Never "the same host name
 * and a pid not running here": containers share both.
 */
import type { Logger } from '../log.js';
import { heartbeatExpired, ownerHeartbeatMs, provablyGone, type Owner } from '../owners.js';
import type { Ledger, OwnerRow } from '../state/ledger.js';

export interface LedgerHeartbeat {
  /** Stops beating and removes the owner's row (call once its jobs are all recorded). */
  stop(): Promise<void>;
}

/** Registers `owner` in the ledger and refreshes its heartbeat every few seconds. */
export async function startLedgerHeartbeat(
  ledger: Ledger,
  owner: Owner,
  log: Logger,
): Promise<LedgerHeartbeat> {
  await ledger.heartbeat(owner);
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    beating = ledger.heartbeat(owner).catch((err: unknown) => {
      log.warn({ err }, 'ledger heartbeat failed');
    });
  }, ownerHeartbeatMs);
  timer.unref();
  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await beating;
      await ledger.removeOwner(owner.id).catch((err: unknown) => {
        log.warn({ err }, 'could not remove this process from the ledger');
      });
    },
  };
}

/** Whether a registered owner is gone (see `owners.ts`). */
export function ownerGone(row: OwnerRow): boolean {
  return heartbeatExpired(row.heartbeatAgeMs) || provablyGone(row);
}

/**
 * Rows leased by an owner that is gone (killed, crashed, its container
 * stopped) go back to `pending` at once instead of waiting out their lease;
 * gone owners that hold nothing any more are forgotten. A lease naming an
 * owner the ledger does not know (an older cxrec) is left to expire.
 */
export async function releaseLeasesOfGoneOwners(
  ledger: Ledger,
  self: Owner,
  now: number,
  log: Logger,
): Promise<number> {
  const gone = new Map<string, OwnerRow>();
  for (const row of await ledger.listOwners()) {
    if (row.id !== self.id && ownerGone(row)) gone.set(row.id, row);
  }
  if (gone.size === 0) return 0;
  let released = 0;
  for (const row of await ledger.list({ states: ['downloading'] })) {
    const holder = row.leaseOwner === null ? undefined : gone.get(row.leaseOwner);
    if (!holder) continue;
    const ok = await ledger.defer(row, holder.id, {
      state: 'pending',
      nextRunAt: now,
      countAttempt: true,
      errorCode: 'worker_died',
      errorMessage: `process ${holder.pid} on ${holder.host} stopped while holding the job`,
    });
    if (ok) released++;
  }
  for (const id of gone.keys()) await ledger.removeOwner(id);
  if (released > 0) log.info({ released }, 'took back jobs of a process that is gone');
  return released;
}
