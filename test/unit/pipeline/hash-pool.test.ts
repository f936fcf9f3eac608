import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';

import { HashPool } from '../../../src/pipeline/hash-pool.js';

/** Small slots, so a few KiB cross many slot boundaries. */
/** A store that takes every batch at once. */
const accept = (): Promise<void> => Promise.resolve();

const pool = new HashPool({ threads: 2, slotBytes: 4096, maxSlots: 6, slotsPerStream: 3 });
after(() => pool.close());

function expected(data: Buffer): { sizeBytes: number; md5: string; sha256: string } {
  return {
    sizeBytes: data.length,
    md5: createHash('md5').update(data).digest('hex'),
    sha256: createHash('sha256').update(data).digest('hex'),
  };
}

test('published vectors: md5 and sha256 of "abc" computed on a pool thread', async () => {
  const d = pool.open();
  const written: Buffer[] = [];
  const sink = (b: Buffer): Promise<void> => {
    written.push(Buffer.from(b));
    return Promise.resolve();
  };
  await d.push(Buffer.from('abc'), sink);
  await d.flush(sink);
  assert.deepEqual(await d.digest(), {
    sizeBytes: 3,
    md5: '900150983cd24fb0d6963f7d28e17f72',
    sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  });
  assert.equal(Buffer.concat(written).toString(), 'abc');
});

test('streams pushed at once, in uneven chunks, through a pool smaller than their bytes: each gets its own digests and the sink sees every byte in order', async () => {
  const inputs = [randomBytes(50_000), randomBytes(33_333), randomBytes(4096 * 5), randomBytes(1)];
  const results = await Promise.all(
    inputs.map(async (data, i) => {
      const d = pool.open();
      const written: Buffer[] = [];
      // The sink is slow and yields, so streams interleave and wait for slots.
      const sink = async (b: Buffer): Promise<void> => {
        await new Promise((r) => setImmediate(r));
        written.push(Buffer.from(b));
      };
      for (let at = 0, n = 1 + i * 7; at < data.length; at += n, n = (n * 3) % 9000 || 1) {
        await d.push(data.subarray(at, at + n), sink);
      }
      await d.flush(sink);
      return { digests: await d.digest(), written: Buffer.concat(written) };
    }),
  );
  results.forEach((r, i) => {
    const data = inputs[i] as Buffer;
    assert.deepEqual(r.digests, expected(data));
    assert.ok(r.written.equals(data), `stream ${i}: the sink got the bytes in order`);
  });
  assert.ok(pool.allocatedSlots <= 6, `slots allocated: ${pool.allocatedSlots}`);
});

test('a batch whose sink fails is neither counted nor hashed: the digests cover what the sink took', async () => {
  const d = pool.open();
  const good = randomBytes(4096 * 2);
  const lost = randomBytes(4096);
  const sink = accept;
  await d.push(good, sink);
  await assert.rejects(
    d.push(lost, () => Promise.reject(new Error('disk full'))),
    /disk full/,
  );
  assert.equal(d.sizeBytes, good.length);
  const tail = randomBytes(100);
  await d.push(tail, sink);
  await d.flush(sink);
  assert.deepEqual(await d.digest(), expected(Buffer.concat([good, tail])));
});

test('digests are refused while pushed bytes never went through the sink', async () => {
  const d = pool.open();
  await d.push(Buffer.from('not written'), accept);
  await assert.rejects(d.digest(), /not flushed/);
  d.close();
});

test('consume hashes a whole stream (the staged bytes of a resume), then more bytes continue the same digests', async () => {
  const staged = randomBytes(10_000);
  const rest = randomBytes(7_000);
  const d = pool.open();
  await d.consume(Readable.from([staged.subarray(0, 3000), staged.subarray(3000)]));
  await d.push(rest, accept);
  await d.flush(accept);
  assert.deepEqual(await d.digest(), expected(Buffer.concat([staged, rest])));
});

test('backpressure: a stream never holds more than its share of slots, and an abandoned stream gives its slot back', async () => {
  const small = new HashPool({ threads: 1, slotBytes: 1024, maxSlots: 2, slotsPerStream: 2 });
  try {
    const a = small.open();
    const b = small.open();
    // `a` fills one slot and keeps it (not flushed); `b` may take only the other.
    await a.push(Buffer.alloc(10, 1), undefined);
    let sinkCalls = 0;
    const slowSink = (): Promise<void> => {
      sinkCalls++;
      return new Promise((r) => setTimeout(r, 5));
    };
    const bDone = b.push(randomBytes(1024 * 5), slowSink);
    await bDone;
    assert.equal(sinkCalls, 5);
    assert.equal(small.allocatedSlots, 2);
    // With every slot taken (a's and b's unflushed, empty one), a third stream waits until `a` is closed.
    await b.push(Buffer.alloc(1), undefined);
    const c = small.open();
    const ac = new AbortController();
    const waiting = c.push(Buffer.alloc(1), undefined, ac.signal);
    let settled = false;
    void waiting.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false, 'no slot was free');
    a.close();
    await waiting;
    assert.equal(small.allocatedSlots, 2);
    // A wait for a slot ends with its signal.
    const d = small.open();
    const aborted = d.push(Buffer.alloc(1), undefined, AbortSignal.abort());
    await assert.rejects(aborted, { name: 'AbortError' });
    b.close();
    c.close();
    d.close();
  } finally {
    await small.close();
  }
});

test('a hashing thread that dies fails its digests instead of hanging them', async () => {
  const doomed = new HashPool({ threads: 1, slotBytes: 1024 });
  const d = doomed.open();
  await d.push(Buffer.alloc(10), accept);
  await d.flush(accept);
  await doomed.close();
  await assert.rejects(d.digest(), { code: 'integrity' });
});
