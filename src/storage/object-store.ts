/**
 * Where verified recordings go. A few verbs, each taking a signal; the SDK
 * adapters stay thin. Key layout (`keys.ts`), hashing and resume decisions
 * live in the pipeline, so every backend keeps the same promises:
 *
 * - nothing is visible under a key until `commit` has checked its size (and
 *   the backend's own per-part digests) and made it visible atomically;
 * - nothing is ever written outside the store's root;
 * - a broken media transfer does not send staged bytes again: the pipeline
 *   keeps the `StagedUpload` and writes the rest after a Range request.
 */
import type { Readable } from 'node:stream';

/** A committed object. `md5`/`sha256` are lowercase hex, when the backend keeps them. */
export interface ObjectInfo {
  key: string;
  sizeBytes: number;
  md5?: string;
  sha256?: string;
}

export interface SignalOption {
  signal?: AbortSignal;
}

export interface PutSmallOptions extends SignalOption {
  contentType: string;
}

export interface OpenUploadOptions extends SignalOption {
  /** `audio/wav` or `audio/mpeg`. */
  contentType: string;
  /**
   * The final size announced by CXone; lets a backend size its parts. It
   * binds loosely: commit checks the size actually written, but S3 sends an
   * object announced smaller than one part (8 MiB) in a single PutObject and
   * refuses (`integrity`) a write that would grow it past a part.
   */
  sizeBytes: number;
  /**
   * The `resumeToken` of an earlier upload of this key that this process (or
   * a crashed one whose lease expired) left behind. A backend that can read
   * its staged bytes back resumes it; one that cannot discards it and
   * starts empty.
   */
  resumeToken?: string;
}

export interface CommitOptions extends SignalOption {
  /** Bytes written in all; must equal what the backend staged. */
  sizeBytes: number;
  /** md5 and sha256 (lowercase hex) of every byte written, computed by the caller while streaming. */
  md5: string;
  sha256: string;
  contentType: string;
}

export interface StagedUpload {
  /**
   * Names this upload so a later attempt can resume or discard it (a
   * `.partial/` file name, an S3 upload id, an Azure block-id prefix). The
   * caller records it in the ledger before writing the first byte.
   */
  readonly resumeToken: string;
  /** Bytes already staged when the upload was opened (resumed); the transfer continues from here. */
  readonly stagedBytes: number;
  /**
   * Reads the staged bytes back so the caller can re-hash them before
   * resuming; defined whenever `stagedBytes > 0`.
   */
  readStaged?(options?: SignalOption): Readable;
  /** Appends bytes; resolves when the backend has taken them (backpressure). */
  write(chunk: Buffer, options?: SignalOption): Promise<void>;
  /** Bytes accepted so far (staged + written). A failed `write` leaves it unchanged. */
  readonly bytesWritten: number;
  /** Checks the size, makes the object visible atomically, and returns it. */
  commit(options: CommitOptions): Promise<ObjectInfo>;
  /** Leaves what is staged in place for a later resume (shutdown, crash-safe parking). */
  park(): Promise<void>;
  /** Discards everything staged; the key is left as it was. */
  abort(): Promise<void>;
}

export interface ObjectStore {
  /** Where this store writes, for messages: `/data/recordings/`, `s3://bucket/prefix/`. */
  readonly location: string;
  /**
   * Keys differing only in case name one object (a local root on a
   * case-folding file system, probed at open); `keys.ts` then hashes ids
   * holding capitals. Absent: false.
   */
  readonly foldsCase?: boolean;
  /** The committed object at `key`, or `undefined`. */
  head(key: string, options?: SignalOption): Promise<ObjectInfo | undefined>;
  /**
   * Starts (or resumes) staging an object at `key`; nothing is visible until
   * `commit`. The caller holds the key's ledger lease, so a backend may
   * discard any other incomplete upload of the key (S3 does: a killed
   * attempt's upload that no row names).
   */
  openUpload(key: string, options: OpenUploadOptions): Promise<StagedUpload>;
  /** Discards an upload left behind by an attempt that will not resume it. */
  discardUpload(key: string, resumeToken: string, options?: SignalOption): Promise<void>;
  /** Writes a small object (a metadata sidecar) atomically, checked like any other. */
  putSmall(key: string, body: Buffer, options: PutSmallOptions): Promise<ObjectInfo>;
  /** Streams a committed object (for `verify`). */
  read(key: string, options?: SignalOption): Promise<Readable>;
  delete(key: string, options?: SignalOption): Promise<void>;
  /**
   * Removes staging leftovers that no live process owns and no ledger row
   * will resume (a `.partial/` file and lock left by a process killed after
   * its commit, say). The caller passes the resume tokens still wanted.
   * Returns how many leftovers were removed. Backends whose staging the
   * ledger already tracks completely may leave it out.
   */
  sweepStaging?(options: SignalOption & { keepTokens: ReadonlySet<string> }): Promise<number>;
  /** Checks the store can be written, for `cxrec doctor`; throws a `CxrecError('storage')` saying what to fix. */
  probe(options?: SignalOption): Promise<void>;
  close?(): Promise<void>;
}
