/**
 * md5 and sha256 of a stream, computed while it passes. md5 is what CXone's
 * ETag and S3's Content-MD5 speak; sha256 is what auditors ask for.
 *
 * Hashing is most of the CPU an export spends (md5 runs near 630 MB/s and
 * sha256 near 1.7 GB/s on one core here), so each hash runs in a worker
 * thread of its own, shared by every transfer of the process, and the main
 * thread is left to move bytes. Chunks are copied to the workers (a copy
 * costs far less than the hash), and a transfer that gets ahead of its
 * hashing waits: at most `maxPendingBytes` per hash are in flight, so memory
 * stays bounded however fast the network is.
 */
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';

export interface DigestResult {
  sizeBytes: number;
  md5: string;
  sha256: string;
}

/** Bytes sent to a hash worker and not yet hashed, per stream, before `update` waits. */
const maxPendingBytes = 16 * 1024 * 1024;

// Plain CommonJS evaluated in the worker: the same code runs from src/ (tsx) and dist/.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) { h = createHash(workerData.algorithm); hashes.set(m.id, h); }
    h.update(m.chunk);
    parentPort.postMessage({ op: 'hashed', id: m.id, bytes: m.chunk.byteLength });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash(workerData.algorithm);
    hashes.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, hex: h.digest('hex') });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  }
});
`;

type WorkerReply = { op: 'hashed'; id: number; bytes: number } | { op: 'digest'; id: number; hex: string };

interface StreamState {
  pending: number;
  /** Resolved when `pending` falls back under the limit. */
  drained: (() => void) | undefined;
  digest: ((hex: string) => void) | undefined;
}

/** One worker thread computing one algorithm for many streams at once. */
class HashWorker {
  private readonly worker: Worker;
  private readonly streams = new Map<number, StreamState>();
  private failure: Error | undefined;

  constructor(algorithm: string) {
    this.worker = new Worker(workerSource, { eval: true, workerData: { algorithm } });
    this.worker.on('message', (m: WorkerReply) => this.onReply(m));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`hash worker exited with code ${code}`)));
    // An idle hash worker must not keep a finished command alive, but one
    // with open streams must: the main thread may be waiting on nothing but
    // its answer. Unref'd after the listeners, since adding a 'message'
    // listener refs the worker's port again; `open`/`forget` re-ref it.
    this.worker.unref();
  }

  open(id: number): void {
    if (this.streams.size === 0) this.worker.ref();
    this.streams.set(id, { pending: 0, drained: undefined, digest: undefined });
  }

  private forget(id: number): boolean {
    const had = this.streams.delete(id);
    if (had && this.streams.size === 0) this.worker.unref();
    return had;
  }

  /** Sends a copy of `chunk`; resolves at once unless too much of this stream awaits hashing. */
  update(id: number, chunk: Buffer): Promise<void> | undefined {
    this.throwIfFailed();
    const state = this.stateOf(id);
    const copy = new Uint8Array(chunk);
    this.worker.postMessage({ op: 'update', id, chunk: copy }, [copy.buffer]);
    state.pending += copy.byteLength;
    if (state.pending <= maxPendingBytes) return undefined;
    return new Promise<void>((resolve) => {
      state.drained = resolve;
    });
  }

  digest(id: number): Promise<string> {
    this.throwIfFailed();
    const state = this.stateOf(id);
    return new Promise<string>((resolve) => {
      state.digest = resolve;
      this.worker.postMessage({ op: 'digest', id });
    });
  }

  drop(id: number): void {
    if (this.forget(id) && !this.failure) this.worker.postMessage({ op: 'drop', id });
  }

  private onReply(m: WorkerReply): void {
    const state = this.streams.get(m.id);
    if (!state) return;
    if (m.op === 'hashed') {
      state.pending -= m.bytes;
      if (state.drained && state.pending <= maxPendingBytes / 2) {
        const resume = state.drained;
        state.drained = undefined;
        resume();
      }
    } else {
      this.forget(m.id);
      state.digest?.(m.hex);
    }
  }

  private stateOf(id: number): StreamState {
    const state = this.streams.get(id);
    if (!state) throw new Error(`hash stream ${id} is not open`);
    return state;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    // Nothing will answer any more: wake every waiter so its transfer fails instead of hanging.
    for (const state of this.streams.values()) {
      state.drained?.();
      state.digest?.('');
    }
    this.streams.clear();
    this.worker.unref();
  }
}

let workers: { md5: HashWorker; sha256: HashWorker } | undefined;
let nextId = 1;

export class StreamDigests {
  private readonly id = nextId++;
  private readonly hashers = (workers ??= { md5: new HashWorker('md5'), sha256: new HashWorker('sha256') });
  private bytes = 0;
  private finished = false;

  constructor() {
    this.hashers.md5.open(this.id);
    this.hashers.sha256.open(this.id);
  }

  /** Adds a chunk; the returned promise (if any) must be awaited before the next one: the hashing is behind. */
  update(chunk: Buffer): Promise<void> | undefined {
    this.bytes += chunk.length;
    const a = this.hashers.md5.update(this.id, chunk);
    const b = this.hashers.sha256.update(this.id, chunk);
    if (!a && !b) return undefined;
    return Promise.all([a, b]).then(() => undefined);
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Feeds a whole stream (e.g. bytes staged by an earlier attempt). */
  async consume(stream: Readable, signal?: AbortSignal): Promise<void> {
    for await (const chunk of stream) {
      signal?.throwIfAborted();
      await this.update(chunk as Buffer);
    }
  }

  async digest(): Promise<DigestResult> {
    this.finished = true;
    const [md5, sha256] = await Promise.all([
      this.hashers.md5.digest(this.id),
      this.hashers.sha256.digest(this.id),
    ]);
    if (md5 === '' || sha256 === '') throw new Error('hash worker failed');
    return { sizeBytes: this.bytes, md5, sha256 };
  }

  /** Frees the workers' state for a stream abandoned before `digest`. */
  dispose(): void {
    if (this.finished) return;
    this.finished = true;
    this.hashers.md5.drop(this.id);
    this.hashers.sha256.drop(this.id);
  }
}

/** The md5 an ETag carries: the quoted hex of a single-part object; `-N` or absent carry none. */
export function md5FromEtag(etag: string | undefined): string | undefined {
  const m = etag === undefined ? null : /^(?:W\/)?"?([0-9a-f]{32})"?$/i.exec(etag.trim());
  return m?.[1]?.toLowerCase();
}
