import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';

import { CxrecError } from '../../../src/errors.js';
import { ChunkBuffers, ChunkedUpload, type ChunkWriter } from '../../../src/storage/chunked-upload.js';
import type { CommitOptions } from '../../../src/storage/object-store.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Keeps chunks by index as a service does (staging an index again replaces it); can refuse the next write. */
class MemoryWriter implements ChunkWriter {
  readonly chunks = new Map<number, Buffer>();
  /** The buffers handed to writeChunk, as they were passed (not copied). */
  readonly passed: Buffer[] = [];
  completed: { count: number; options: CommitOptions } | undefined;
  aborted = false;
  failAt: number | undefined;

  writeChunk(index: number, chunk: Buffer, digest: Buffer): Promise<void> {
    assert.equal(digest.toString('hex'), md5(chunk), 'every chunk carries its own md5');
    this.passed.push(chunk);
    if (this.failAt === index) {
      this.failAt = undefined;
      return Promise.reject(new CxrecError('storage', 'refused on purpose'));
    }
    this.chunks.set(index, Buffer.from(chunk));
    return Promise.resolve();
  }

  complete(count: number, options: CommitOptions): Promise<void> {
    this.completed = { count, options };
    return Promise.resolve();
  }

  abort(): Promise<void> {
    this.aborted = true;
    return Promise.resolve();
  }

  object(): Buffer {
    assert.ok(this.completed);
    return Buffer.concat(Array.from({ length: this.completed.count }, (_, i) => this.chunks.get(i)!));
  }
}

const chunkSize = 1000;

function upload(writer: MemoryWriter, sizeHintBytes = 10 * chunkSize): ChunkedUpload {
  return new ChunkedUpload({
    key: 'recordings/r_combined.wav',
    location: 'mem://',
    resumeToken: 't',
    chunkSizeBytes: chunkSize,
    sizeHintBytes,
    writer,
  });
}

const commitOptions = (b: Buffer): CommitOptions => ({
  sizeBytes: b.length,
  md5: md5(b),
  sha256: sha256(b),
  contentType: 'audio/wav',
});

describe('ChunkedUpload', () => {
  it('cuts any sequence of writes into whole chunks and a short last one', async () => {
    const bytes = randomBytes(4 * chunkSize + 321);
    const writer = new MemoryWriter();
    const u = upload(writer);
    for (const [from, to] of [
      [0, 10],
      [10, 999],
      [999, 1000],
      [1000, 3500],
      [3500, bytes.length],
    ] as const) {
      await u.write(bytes.subarray(from, to));
    }
    assert.equal(u.bytesWritten, bytes.length);
    await u.commit(commitOptions(bytes));
    assert.equal(writer.completed?.count, 5);
    for (let i = 0; i < 4; i++) assert.equal(writer.chunks.get(i)?.length, chunkSize);
    assert.deepEqual(writer.object(), bytes);
  });

  it('sends whole chunks inside a large write straight from the caller’s buffer', async () => {
    const bytes = randomBytes(3 * chunkSize);
    const writer = new MemoryWriter();
    const u = upload(writer);
    await u.write(bytes);
    assert.equal(writer.passed.length, 3);
    for (const chunk of writer.passed) assert.equal(chunk.buffer, bytes.buffer, 'a view, not a copy');
  });

  it('a write whose second chunk fails counts nothing; writing it again completes the object', async () => {
    const bytes = randomBytes(3 * chunkSize + 50);
    const writer = new MemoryWriter();
    const u = upload(writer);
    await u.write(bytes.subarray(0, 400));
    writer.failAt = 1;
    await assert.rejects(u.write(bytes.subarray(400, 2500)), CxrecError);
    assert.equal(u.bytesWritten, 400);
    await u.write(bytes.subarray(400));
    await u.commit(commitOptions(bytes));
    assert.deepEqual(writer.object(), bytes);
  });

  it('checks size and md5 before completing, and an empty object is one empty chunk', async () => {
    const bytes = randomBytes(1500);
    const writer = new MemoryWriter();
    const u = upload(writer);
    await u.write(bytes);
    await assert.rejects(u.commit({ ...commitOptions(bytes), sizeBytes: 1499 }), /refused to commit/);
    await assert.rejects(
      u.commit({ ...commitOptions(bytes), md5: md5(Buffer.from('x')) }),
      /refused to commit/,
    );
    assert.equal(writer.completed, undefined);

    const empty = new MemoryWriter();
    await upload(empty, 0).commit(commitOptions(Buffer.alloc(0)));
    assert.equal(empty.completed?.count, 1);
    assert.equal(empty.chunks.get(0)?.length, 0);
  });

  it('a single-request upload sends the object whole at commit and refuses to grow past a chunk', async () => {
    const sent: Buffer[] = [];
    const u = new ChunkedUpload({
      key: 'metadata/x.json',
      location: 'mem://',
      resumeToken: 't',
      chunkSizeBytes: chunkSize,
      sizeHintBytes: 10,
      writer: { putWhole: (body) => Promise.resolve(void sent.push(Buffer.from(body))) },
    });
    const bytes = randomBytes(600);
    await u.write(bytes.subarray(0, 5));
    await u.write(bytes.subarray(5));
    await assert.rejects(u.write(randomBytes(chunkSize)), (err: unknown) => {
      assert.ok(err instanceof CxrecError);
      assert.equal(err.code, 'integrity');
      return true;
    });
    assert.equal(u.bytesWritten, 600);
    await u.commit(commitOptions(bytes));
    assert.deepEqual(sent, [bytes]);
  });

  it('abort after park discards; after commit it does nothing', async () => {
    const parked = new MemoryWriter();
    const p = upload(parked);
    await p.write(randomBytes(10));
    await p.park();
    await assert.rejects(p.write(randomBytes(1)), CxrecError);
    await p.abort();
    assert.equal(parked.aborted, true);

    const committed = new MemoryWriter();
    const c = upload(committed);
    const bytes = randomBytes(10);
    await c.write(bytes);
    await c.commit(commitOptions(bytes));
    await c.abort();
    assert.equal(committed.aborted, false);
  });

  it('uploads one after another reuse the same chunk buffers; at once, each has its own, and every object is whole', async () => {
    const buffers = new ChunkBuffers(chunkSize, 2);
    const open = (writer: MemoryWriter): ChunkedUpload =>
      new ChunkedUpload({
        key: 'recordings/r_combined.wav',
        location: 'mem://',
        resumeToken: 't',
        chunkSizeBytes: chunkSize,
        sizeHintBytes: 10 * chunkSize,
        writer,
        buffers,
      });
    // Ten uploads in turn, each ending a different way, written in pieces that never fill a chunk at once.
    for (let i = 0; i < 10; i++) {
      const writer = new MemoryWriter();
      const u = open(writer);
      const bytes = randomBytes(2500 + i);
      for (let at = 0; at < bytes.length; at += 300) await u.write(bytes.subarray(at, at + 300));
      if (i % 3 === 1) await u.park();
      else if (i % 3 === 2) await u.abort();
      else {
        await u.commit(commitOptions(bytes));
        assert.ok(writer.object().equals(bytes), `upload ${i} is whole`);
      }
    }
    assert.equal(buffers.allocated, 1, 'one buffer served ten uploads in turn');
    // Three at once, interleaved: three buffers, none shared; two are kept for reuse afterwards.
    const writers = [new MemoryWriter(), new MemoryWriter(), new MemoryWriter()];
    const uploads = writers.map(open);
    const objects = writers.map(() => randomBytes(2 * chunkSize + 77));
    for (let at = 0; at < (objects[0] as Buffer).length; at += 400) {
      await Promise.all(uploads.map((u, k) => u.write((objects[k] as Buffer).subarray(at, at + 400))));
    }
    await Promise.all(uploads.map((u, k) => u.commit(commitOptions(objects[k] as Buffer))));
    writers.forEach((w, k) => assert.ok(w.object().equals(objects[k] as Buffer), `upload ${k} is whole`));
    assert.equal(buffers.allocated, 3);
    const next = new MemoryWriter();
    const u = open(next);
    const bytes = randomBytes(chunkSize * 2);
    await u.write(bytes.subarray(0, 10));
    await u.write(bytes.subarray(10));
    await u.commit(commitOptions(bytes));
    assert.equal(buffers.allocated, 3, 'a kept buffer was reused');
  });
});
