/**
 * Who a process is, and when it counts as gone. Every decision that tells a
 * live owner from a gone one (job leases of dead processes, staging locks,
 * temp files, S3 multipart uploads left behind) asks this module, so that
 * containers sharing a host name and running cxrec as pid 1 are never taken
 * for one another.
 *
 * An owner is a random id (`crypto.randomUUID`) made when a process starts,
 * with the host name and pid it ran as (for people reading `status` or a
 * lock file, never to decide anything alone). An owner publishes a
 * heartbeat: a row of the ledger's `processes` table (the database's clock
 * on PostgreSQL) and, for local storage, a file in `.partial/`. It is gone
 * once its heartbeat is older than `ownerExpiresAfterMs`.
 *
 * One shortcut keeps a restart after a crash fast: when the other owner ran
 * in this very pid namespace of this very boot of the kernel (same
 * `/proc/sys/kernel/random/boot_id` and `/proc/self/ns/pid`), a pid that
 * no longer runs proves it gone. Containers get a pid namespace each, so a
 * neighbour's pid 1 is never checked against ours.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** How often a live owner refreshes its heartbeats. */
export const ownerHeartbeatMs = 5_000;
/**
 * A heartbeat older than this means its owner is gone: six missed beats,
 * room for an event loop stalled by a big ledger read or a slow NAS.
 */
export const ownerExpiresAfterMs = 30_000;

export interface Owner {
  /** Random, unique per process (and per store/ledger instance in tests). */
  id: string;
  host: string;
  pid: number;
  /** `<boot id>/<pid namespace>`, or null where the platform does not say (not Linux). */
  kernel: string | null;
}

let kernelId: string | null | undefined;

/** This process's `<boot id>/<pid namespace>`; null when unknown. */
export function currentKernel(): string | null {
  if (kernelId === undefined) {
    try {
      const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      const ns = readlinkSync('/proc/self/ns/pid');
      kernelId = boot !== '' && ns !== '' ? `${boot}/${ns}` : null;
    } catch {
      kernelId = null;
    }
  }
  return kernelId;
}

/** A new owner for this process: a fresh random id. */
export function newOwner(): Owner {
  return { id: randomUUID(), host: hostname(), pid: process.pid, kernel: currentKernel() };
}

let current: Owner | undefined;

/** The owner every part of this process uses unless told otherwise (tests make several). */
export function processOwner(): Owner {
  current ??= newOwner();
  return current;
}

/** Whether a heartbeat `ageMs` old (on one clock: the ledger's, or the file server's) has expired. */
export function heartbeatExpired(ageMs: number): boolean {
  return ageMs > ownerExpiresAfterMs;
}

/**
 * Whether `other` is certainly gone without waiting for its heartbeat: it
 * ran in this pid namespace of this boot and its pid no longer runs. False
 * whenever that cannot be known (another host, another container, another
 * boot, or our own pid).
 */
export function provablyGone(other: { pid: number; kernel: string | null }): boolean {
  const kernel = currentKernel();
  if (kernel === null || other.kernel !== kernel || other.pid === process.pid) return false;
  return !processAlive(other.pid);
}

/** Whether a process of this pid namespace runs. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Parses an owner written by `JSON.stringify(owner)`; undefined when it is not one. */
export function parseOwner(value: unknown): Owner | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const o = value as Record<string, unknown>;
  if (typeof o.id !== 'string' || typeof o.host !== 'string' || typeof o.pid !== 'number') return undefined;
  const kernel = typeof o.kernel === 'string' ? o.kernel : null;
  return { id: o.id, host: o.host, pid: o.pid, kernel };
}
