/**
 * The staging half of an S3 or Azure upload, written once: it cuts the
 * caller's writes into chunks of a fixed size, sends each with its md5,
 * counts and hashes what was accepted, checks the caller's size and md5
 * before anything becomes visible, and parks or aborts. The backend
 * supplies a `ChunkWriter` (S3 multipart parts, Azure blocks) or, for an
 * object sent in one request, a `SingleRequestWriter` (S3 PutObject); the
 * SDK calls live there. Modelled on rclone's `lib/multipart` driving a
 * backend's `ChunkWriter`.
 *
 * Memory is bounded by design: an upload holds at most ONE chunk buffer
 * (for an instant two, while a buffer sized for a small object grows to a
 * full chunk). Full-size chunk buffers come from a process-wide pool
 * (`ChunkBuffers`) and go back to it when the upload commits, parks or
 * aborts, so a long export reuses the same few buffers instead of leaving
 * one per finished upload to the garbage collector. Whole chunks inside a
 * caller's write are sent straight from the caller's buffer; only the tail
 * below a chunk is copied.
 */
import { createHash, type Hash } from 'node:crypto';

import { CxrecError } from '../errors.js';
import { assertCommitMatches, assertOpen, throwIfAborted } from './commit-check.js';
import type { CommitOptions, ObjectInfo, SignalOption, StagedUpload } from './object-store.js';

/** A backend's side of a chunked upload. Failures are `CxrecError`s that name the key. */
export interface ChunkWriter {
  /**
   * Stages chunk `index` (0-based) with its md5 (Content-MD5: the service
   * refuses bytes that differ). Staging an index again replaces it, which is
   * how a write that failed halfway is retried.
   */
  writeChunk(index: number, chunk: Buffer, md5: Buffer, signal: AbortSignal | undefined): Promise<void>;
  /**
   * Makes the object visible, atomically, from chunks `0 … chunkCount - 1`,
   * with the content type and md5/sha256 of `options`. A commit retried after
   * a failure calls it again.
   */
  complete(chunkCount: number, options: CommitOptions): Promise<void>;
  /** Discards what is staged; left out where the service has no such call (Azure). */
  abort?(): Promise<void>;
}

/** A backend that sends an object smaller than one chunk in one request at commit. */
export interface SingleRequestWriter {
  /** Sends the whole object with the content type and md5/sha256 of `options` (Content-MD5 included). */
  putWhole(body: Buffer, options: CommitOptions): Promise<void>;
}

/**
 * Full-size chunk buffers shared by every upload of one chunk size. Up to
 * `keep` buffers are kept for reuse; an upload that finds none free gets a
 * new one, dropped on release once `keep` are kept, so uploads never wait
 * for memory (a stalled media transfer would hold its buffer for as long
 * as it stalls). At `CXREC_CONCURRENCY` ≤ `keep`, the buffers are a fixed set.
 */
export class ChunkBuffers {
  private readonly free: Buffer[] = [];
  private created = 0;

  constructor(
    readonly chunkBytes: number,
    readonly keep = 8,
  ) {}

  take(): Buffer {
    const buf = this.free.pop();
    if (buf) return buf;
    this.created++;
    return Buffer.allocUnsafeSlow(this.chunkBytes);
  }

  give(buf: Buffer): void {
    if (buf.length === this.chunkBytes && this.free.length < this.keep && !this.free.includes(buf)) {
      this.free.push(buf);
    }
  }

  /** Buffers allocated so far (for tests and benchmarks). */
  get allocated(): number {
    return this.created;
  }
}

const sharedBuffers = new Map<number, ChunkBuffers>();

/** The process's pool of chunk buffers of `chunkBytes`. */
export function chunkBuffersOf(chunkBytes: number): ChunkBuffers {
  let pool = sharedBuffers.get(chunkBytes);
  if (!pool) {
    pool = new ChunkBuffers(chunkBytes);
    sharedBuffers.set(chunkBytes, pool);
  }
  return pool;
}

export interface ChunkedUploadInit {
  key: string;
  /** The store's location, for messages. */
  location: string;
  resumeToken: string;
  /** Every chunk but the last has exactly this size. */
  chunkSizeBytes: number;
  /** The size the upload was opened with; sizes the first buffer of a small object. */
  sizeHintBytes: number;
  writer: ChunkWriter | SingleRequestWriter;
  /** Where full-size chunk buffers come from. @default chunkBuffersOf(chunkSizeBytes) */
  buffers?: ChunkBuffers;
}

export class ChunkedUpload implements StagedUpload {
  /** Staged chunks cannot be read back (S3 and Azure have no GET for them): every upload starts at 0. */
  readonly stagedBytes = 0;
  readonly resumeToken: string;
  private readonly md5: Hash = createHash('md5');
  /** The chunk being filled: `buffer[0, filled)` holds the bytes accepted but not sent. */
  private buffer: Buffer | undefined;
  private filled = 0;
  /** Chunks sent and counted. */
  private chunks = 0;
  private written = 0;
  private state: 'open' | 'committed' | 'parked' | 'aborted' = 'open';
  /** Serialises writes: they fill one buffer and number chunks in order. */
  private queue: Promise<void> = Promise.resolve();
  private readonly buffers: ChunkBuffers;

  constructor(private readonly o: ChunkedUploadInit) {
    this.resumeToken = o.resumeToken;
    this.buffers = o.buffers ?? chunkBuffersOf(o.chunkSizeBytes);
  }

  get bytesWritten(): number {
    return this.written;
  }

  write(chunk: Buffer, options?: SignalOption): Promise<void> {
    const run = this.queue.then(() => this.writeNow(chunk, options?.signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(chunk: Buffer, signal: AbortSignal | undefined): Promise<void> {
    assertOpen(this.state !== 'open', this.context);
    throwIfAborted(signal, { key: this.o.key });
    const size = this.o.chunkSizeBytes;
    if (this.filled + chunk.length < size) {
      // Copied: the caller may reuse its buffer once the write resolves.
      chunk.copy(this.room(this.filled + chunk.length), this.filled);
      this.accept(chunk, this.filled + chunk.length, this.chunks);
      return;
    }
    if (!('writeChunk' in this.o.writer)) {
      throw new CxrecError(
        'integrity',
        'more bytes arrived than the size this upload was opened with (an object below one chunk is sent in one request at commit); reopen it with the right sizeBytes',
        { retryable: false, context: this.context },
      );
    }
    // Nothing is counted until every chunk of this write was sent: on a
    // failure the caller writes the same bytes again, each chunk is sent
    // again under its index (which replaces it), and `buffer[0, filled)` is
    // still as it was, since only the space after it was written.
    let index = this.chunks;
    let offset = 0;
    if (this.filled > 0) {
      const buffer = this.room(size);
      offset = size - this.filled;
      chunk.copy(buffer, this.filled, 0, offset);
      await this.send(this.o.writer, index++, buffer, signal);
    }
    for (; chunk.length - offset >= size; offset += size) {
      await this.send(this.o.writer, index++, chunk.subarray(offset, offset + size), signal);
    }
    const tail = chunk.length - offset;
    if (tail > 0) chunk.copy(this.room(tail), 0, offset);
    this.accept(chunk, tail, index);
  }

  private accept(chunk: Buffer, filled: number, chunks: number): void {
    this.filled = filled;
    this.chunks = chunks;
    this.md5.update(chunk);
    this.written += chunk.length;
  }

  /**
   * The chunk buffer, with room for `bytes`, keeping `buffer[0, filled)`.
   * The first one is sized for the announced object, so a small object does
   * not take a whole chunk; past that it grows once, to a chunk.
   */
  private room(bytes: number): Buffer {
    if (this.buffer !== undefined && this.buffer.length >= bytes) return this.buffer;
    const size = this.o.chunkSizeBytes;
    const capacity = this.buffer === undefined ? Math.max(bytes, Math.min(this.o.sizeHintBytes, size)) : size;
    const grown = capacity === size ? this.buffers.take() : Buffer.allocUnsafe(capacity);
    this.buffer?.copy(grown, 0, 0, this.filled);
    this.buffer = grown;
    return grown;
  }

  /** The chunk buffer goes back to the pool: nothing of this upload is sent from it again. */
  private dropBuffer(): void {
    if (this.buffer) this.buffers.give(this.buffer);
    this.buffer = undefined;
  }

  private send(
    writer: ChunkWriter,
    index: number,
    chunk: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    return writer.writeChunk(index, chunk, createHash('md5').update(chunk).digest(), signal);
  }

  async commit(options: CommitOptions): Promise<ObjectInfo> {
    await this.queue;
    assertOpen(this.state !== 'open', this.context);
    throwIfAborted(options.signal, { key: this.o.key });
    assertCommitMatches(
      { sizeBytes: this.written, md5: this.md5.copy().digest('hex') },
      options,
      this.context,
    );
    const checked = { ...options, md5: options.md5.toLowerCase(), sha256: options.sha256.toLowerCase() };
    const rest = this.buffer?.subarray(0, this.filled) ?? Buffer.alloc(0);
    const writer = this.o.writer;
    if (!('writeChunk' in writer)) {
      await writer.putWhole(rest, checked);
    } else {
      // The last chunk (or the only, empty one: a service needs at least one).
      if (this.filled > 0 || this.chunks === 0) {
        await this.send(writer, this.chunks, rest, options.signal);
        this.chunks++;
        this.filled = 0;
      }
      await writer.complete(this.chunks, checked);
    }
    this.state = 'committed';
    this.dropBuffer();
    return { key: this.o.key, sizeBytes: this.written, md5: checked.md5, sha256: checked.sha256 };
  }

  /** What was staged stays for `discardUpload`, or for the next attempt's `openUpload`, which discards it. */
  async park(): Promise<void> {
    await this.queue;
    if (this.state === 'open') this.state = 'parked';
    this.dropBuffer();
  }

  async abort(): Promise<void> {
    await this.queue;
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.dropBuffer();
    const writer = this.o.writer;
    if ('writeChunk' in writer) await writer.abort?.();
  }

  private get context(): { key: string; location: string } {
    return { key: this.o.key, location: this.o.location };
  }
}
