/**
 * The check every backend makes before an object becomes visible: the
 * caller's size and md5 (computed while it streamed from CXone) must match
 * what the backend itself counted and hashed on the bytes it staged. A
 * mismatch means the caller and the store saw different bytes, so nothing
 * is committed.
 */
import { createHash } from 'node:crypto';

import { CxrecError } from '../errors.js';
import type { CommitOptions } from './object-store.js';

export interface StagedDigest {
  sizeBytes: number;
  /** Lowercase hex md5 of every staged byte. */
  md5: string;
}

/** md5 and sha256 (lowercase hex) of a body held whole: a small object's digests. */
export function digestsOf(body: Buffer): { md5: string; sha256: string } {
  return {
    md5: createHash('md5').update(body).digest('hex'),
    sha256: createHash('sha256').update(body).digest('hex'),
  };
}

/** The size half of the check, for a backend that stages the caller's own buffers and hashes nothing itself. */
export function assertCommitSize(
  stagedBytes: number,
  options: CommitOptions,
  context: { key: string; location: string },
): void {
  if (options.sizeBytes !== stagedBytes) {
    throw new CxrecError(
      'integrity',
      `refused to commit: the caller counted ${options.sizeBytes} bytes but ${stagedBytes} were staged; nothing was made visible`,
      { context },
    );
  }
}

export function assertCommitMatches(
  staged: StagedDigest,
  options: CommitOptions,
  context: { key: string; location: string },
): void {
  assertCommitSize(staged.sizeBytes, options, context);
  if (options.md5.toLowerCase() !== staged.md5) {
    throw new CxrecError(
      'integrity',
      `refused to commit: the caller's md5 ${options.md5} differs from the md5 ${staged.md5} of the staged bytes; nothing was made visible`,
      { context },
    );
  }
}

/** Throws the abort reason (or a `CxrecError('aborted')`) when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, context: { key: string }): void {
  if (signal?.aborted) {
    throw new CxrecError('aborted', 'object store operation cancelled', { cause: signal.reason, context });
  }
}

/** Once an upload was committed or aborted it takes no more calls. */
export function assertOpen(done: boolean, context: { key: string; location: string }): void {
  if (done) {
    throw new CxrecError('storage', 'this upload was already committed, parked or aborted; open a new one', {
      retryable: false,
      context,
    });
  }
}
