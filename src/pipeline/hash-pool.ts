/**
 * md5 and sha256 off the main thread, in a fixed amount of memory.
 *
 * One core hashes md5 at ~600 MB/s and sha256 at ~1.5 GB/s: together about
 * 430 MB/s, so on the main thread, beside receiving and writing, the two
 * hashes cap a download well below the wire. Here the bytes of a stream are
 * copied once, from the network chunks into a slot of a fixed pool of
 * `SharedArrayBuffer`s (the copy the 1 MiB batching made anyway); the slot
 * is handed to the store, and only once the store took it is it posted to a
 * hashing thread, which reads it in place (no copy) and hands it back.
 *
 * Memory is bounded by construction: at most `maxSlots` slots exist, and a
 * stream holds at most `slotsPerStream` of them (the one it fills and those
 * waiting to be hashed). When the hashing threads fall behind, `push` waits
 * for a slot, the transfer stops reading, and TCP slows the sender: that is
 * the backpressure. (An earlier attempt posted copies to threads through an
 * unbounded queue and grew to 300–500 MB.)
 *
 * A stream's slots all go to one thread, and a thread handles its messages
 * in order, so each stream is hashed in the order its bytes were written.
 */
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';

import { CxrecError } from '../errors.js';
import type { DigestResult } from './digests.js';

/** The hashing thread: CommonJS source, run with `eval` so dist/ and tsx need no worker file. */
const threadSource = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const streams = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let s = streams.get(m.id);
    if (s === undefined) {
      s = { md5: createHash('md5'), sha256: createHash('sha256'), bytes: 0 };
      streams.set(m.id, s);
    }
    const view = Buffer.from(m.sab, 0, m.length);
    s.md5.update(view);
    s.sha256.update(view);
    s.bytes += m.length;
    parentPort.postMessage({ op: 'freed', slot: m.slot });
  } else if (m.op === 'digest') {
    const s = streams.get(m.id) ?? { md5: createHash('md5'), sha256: createHash('sha256'), bytes: 0 };
    streams.delete(m.id);
    parentPort.postMessage({
      op: 'digest', id: m.id, sizeBytes: s.bytes, md5: s.md5.digest('hex'), sha256: s.sha256.digest('hex'),
    });
  } else if (m.op === 'drop') {
    streams.delete(m.id);
  }
});
`;

export interface HashPoolOptions {
  /** Hashing threads. @default min(2, availableParallelism()) */
  threads?: number;
  /** Bytes per slot: how much is written to the store and hashed at once. @default 1 MiB */
  slotBytes?: number;
  /** Slots in all, allocated as needed. @default 32 */
  maxSlots?: number;
  /** Slots one stream may hold (filling + waiting to be hashed). @default 4 */
  slotsPerStream?: number;
}

interface Slot {
  index: number;
  sab: SharedArrayBuffer;
  buf: Buffer;
}

type ThreadReply =
  | { op: 'freed'; slot: number }
  | { op: 'digest'; id: number; sizeBytes: number; md5: string; sha256: string };

/** One hashing thread and what it owes the main thread. */
class HashThread {
  readonly worker: Worker;
  /** Streams assigned to it and not yet digested or dropped. */
  streams = 0;
  private readonly digests = new Map<number, { resolve(r: DigestResult): void; reject(e: unknown): void }>();
  /** Slots posted and not yet handed back, by index. */
  private readonly posted = new Set<number>();
  private failure: CxrecError | undefined;

  constructor(private readonly onFreed: (slot: number) => void) {
    // execArgv: [] keeps a test runner's loader (tsx) out of the thread; the
    // thread holds a few Hash objects, so a small heap is plenty and keeps its RSS small.
    this.worker = new Worker(threadSource, {
      eval: true,
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 },
    });
    this.worker.unref();
    this.worker.on('message', (m: ThreadReply) => {
      if (m.op === 'freed') {
        this.posted.delete(m.slot);
        this.onFreed(m.slot);
      } else {
        const waiter = this.digests.get(m.id);
        this.digests.delete(m.id);
        waiter?.resolve({ sizeBytes: m.sizeBytes, md5: m.md5, sha256: m.sha256 });
      }
      this.refIfBusy();
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`exit code ${code}`)));
  }

  /** Whatever the thread owed fails (digests) or comes back (slots): nothing waits on a dead thread. */
  private fail(cause: unknown): void {
    if (this.failure) return;
    this.failure = new CxrecError('integrity', 'the hashing thread stopped', { cause });
    for (const w of this.digests.values()) w.reject(this.failure);
    this.digests.clear();
    for (const slot of this.posted) this.onFreed(slot);
    this.posted.clear();
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  update(id: number, slot: Slot, length: number): void {
    if (this.failure) throw this.failure;
    this.posted.add(slot.index);
    this.worker.postMessage({ op: 'update', id, slot: slot.index, sab: slot.sab, length });
    this.refIfBusy();
  }

  digest(id: number): Promise<DigestResult> {
    if (this.failure) return Promise.reject(this.failure);
    const result = new Promise<DigestResult>((resolve, reject) => this.digests.set(id, { resolve, reject }));
    this.worker.postMessage({ op: 'digest', id });
    this.refIfBusy();
    return result;
  }

  drop(id: number): void {
    if (!this.failure) this.worker.postMessage({ op: 'drop', id });
  }

  /** Keeps the process alive while the thread owes an answer, and only then. */
  private refIfBusy(): void {
    if (this.posted.size > 0 || this.digests.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  async terminate(): Promise<void> {
    this.fail(new Error('the hash pool was closed'));
    await this.worker.terminate();
  }
}

export class HashPool {
  readonly slotBytes: number;
  readonly maxSlots: number;
  readonly slotsPerStream: number;
  private readonly threadCount: number;
  private threads: HashThread[] = [];
  private readonly slots: Slot[] = [];
  private readonly free: Slot[] = [];
  /** Streams waiting for a slot, woken in turn when one is freed. */
  private waiters: (() => void)[] = [];
  private readonly owners = new Map<number, PooledDigests>();
  private nextId = 1;

  constructor(options: HashPoolOptions = {}) {
    this.threadCount = Math.max(1, options.threads ?? Math.min(2, availableParallelism()));
    this.slotBytes = options.slotBytes ?? 1024 * 1024;
    this.maxSlots = Math.max(1, options.maxSlots ?? 32);
    this.slotsPerStream = Math.max(1, Math.min(options.slotsPerStream ?? 4, this.maxSlots));
  }

  /** A new stream's digests. `close()` it when it is abandoned. */
  open(): PooledDigests {
    this.threads = this.threads.filter((t) => !t.failed);
    let thread: HashThread;
    if (this.threads.length < this.threadCount) {
      thread = new HashThread((slot) => this.freed(slot));
      this.threads.push(thread);
    } else {
      thread = this.threads.reduce((a, b) => (b.streams < a.streams ? b : a));
    }
    thread.streams++;
    const digests = new PooledDigests(this, thread, this.nextId++);
    return digests;
  }

  /** Slots allocated so far (for tests and benchmarks). */
  get allocatedSlots(): number {
    return this.slots.length;
  }

  /** Stops the threads; pending digests reject. */
  async close(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((t) => t.terminate()));
  }

  /** @internal A free slot for `owner`, waiting while the pool or its share is used up. */
  async acquire(owner: PooledDigests, signal: AbortSignal | undefined): Promise<Slot> {
    for (;;) {
      signal?.throwIfAborted();
      if (owner.held < this.slotsPerStream) {
        const slot = this.free.pop() ?? this.allocate();
        if (slot) {
          owner.held++;
          this.owners.set(slot.index, owner);
          return slot;
        }
      }
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          this.waiters = this.waiters.filter((w) => w !== wake);
          reject(signal?.reason as Error);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(wake);
      });
    }
  }

  /** @internal Gives a slot back (hashed, or never posted). */
  release(slot: Slot): void {
    const owner = this.owners.get(slot.index);
    this.owners.delete(slot.index);
    if (owner) owner.held--;
    this.free.push(slot);
    // Every waiter checks again: the freed slot may be its, or its share may have room now.
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private freed(index: number): void {
    const slot = this.slots[index];
    if (slot) this.release(slot);
  }

  private allocate(): Slot | undefined {
    if (this.slots.length >= this.maxSlots) return undefined;
    const sab = new SharedArrayBuffer(this.slotBytes);
    const slot = { index: this.slots.length, sab, buf: Buffer.from(sab) };
    this.slots.push(slot);
    return slot;
  }
}

/** Where a full slot goes before it is hashed (the store's `write`); resolves once it took the bytes. */
export type SlotSink = (bytes: Buffer) => Promise<void>;

/**
 * The md5 and sha256 of one stream, hashed on a pool thread. Bytes are
 * hashed in the order they are pushed, and a batch only after its sink
 * took it: a batch whose sink fails is dropped, neither written nor hashed.
 */
export class PooledDigests {
  /** @internal Slots this stream holds. */
  held = 0;
  private slot: Slot | undefined;
  private filled = 0;
  private bytes = 0;
  private closed = false;

  /** @internal Use `HashPool.open()`. */
  constructor(
    private readonly pool: HashPool,
    private readonly thread: HashThread,
    private readonly id: number,
  ) {}

  /** Bytes handed to the thread to hash. */
  get sizeBytes(): number {
    return this.bytes;
  }

  /** Copies `chunk` into slots; each slot that fills goes through `sink`, then to the thread. */
  async push(chunk: Buffer, sink: SlotSink | undefined, signal?: AbortSignal): Promise<void> {
    for (let at = 0; at < chunk.length;) {
      this.slot ??= await this.pool.acquire(this, signal);
      const n = chunk.copy(this.slot.buf, this.filled, at);
      this.filled += n;
      at += n;
      if (this.filled === this.pool.slotBytes) await this.flush(sink);
    }
  }

  /** Sends the partly filled slot through `sink` and to the thread. */
  async flush(sink: SlotSink | undefined): Promise<void> {
    const slot = this.slot;
    const length = this.filled;
    if (slot === undefined) return;
    this.slot = undefined;
    this.filled = 0;
    if (length === 0) {
      this.pool.release(slot);
      return;
    }
    try {
      if (sink) await sink(slot.buf.subarray(0, length));
      this.thread.update(this.id, slot, length);
    } catch (err) {
      this.pool.release(slot);
      throw err;
    }
    this.bytes += length;
  }

  /** Hashes a whole stream (bytes staged by an earlier attempt, a stored object). */
  async consume(stream: Readable, signal?: AbortSignal): Promise<void> {
    for await (const chunk of stream) {
      signal?.throwIfAborted();
      await this.push(chunk as Buffer, undefined, signal);
    }
    await this.flush(undefined);
  }

  /** The digests of every byte hashed; the stream is closed after. */
  async digest(): Promise<DigestResult> {
    if (this.closed) throw new Error('digests already taken or closed');
    // Bytes pushed but never through their sink were not written: they are not the object's.
    if (this.filled > 0) throw new Error('digest asked for with bytes not flushed');
    await this.flush(undefined);
    this.closed = true;
    this.thread.streams--;
    return this.thread.digest(this.id);
  }

  /** Abandons the stream: its slot goes back and the thread forgets it. A no-op after `digest`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.thread.streams--;
    if (this.slot) this.pool.release(this.slot);
    this.slot = undefined;
    this.filled = 0;
    this.thread.drop(this.id);
  }
}

let shared: HashPool | undefined;

/**
 * The process's pool: threads start on first use and never keep the process
 * alive while idle. 32 slots of 1 MiB at most, 4 per stream: 16 MiB at the
 * default concurrency of 4.
 */
export function sharedHashPool(): HashPool {
  shared ??= new HashPool();
  return shared;
}
