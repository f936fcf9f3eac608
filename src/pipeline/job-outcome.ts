/**
 * What one job ended with, as the download tells the worker pool: the
 * worker turns it into a ledger write (finish, defer, fallback row).
 */
import type { FinalState, StoredObjectInfo } from '../state/ledger.js';

export type JobOutcome =
  | {
      kind: 'final';
      state: FinalState;
      /** One of a bounded set of words; what varies per row goes in `detail`. */
      reason: string;
      detail?: string;
      stored?: StoredObjectInfo;
      error?: unknown;
    }
  /** Not Available after all (the Processing trap): wait and re-check. */
  | { kind: 'waiting'; status: string; reason: string }
  /** Not ready yet where only asking again tells (platform playback 404): ask again at `at`. */
  | { kind: 'later'; at: number; status: string; reason: string }
  /** A transient fault outlasted this attempt's retries: try the job again later. */
  | { kind: 'retry'; error: unknown }
  /** Another channel must be fetched instead (fallback to combined). */
  | { kind: 'fallback'; reason: string };
