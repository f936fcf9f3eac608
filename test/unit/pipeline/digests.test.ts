import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';

import { md5FromEtag, StreamDigests } from '../../../src/pipeline/digests.js';

function expected(chunks: readonly Buffer[]): { md5: string; sha256: string; sizeBytes: number } {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  for (const c of chunks) {
    md5.update(c);
    sha256.update(c);
  }
  return {
    md5: md5.digest('hex'),
    sha256: sha256.digest('hex'),
    sizeBytes: chunks.reduce((n, c) => n + c.length, 0),
  };
}

/**
 * Published test vectors (RFC 1321 and FIPS 180-2 examples, checked with
 * `openssl`), so a digest that drifted would fail even if node:crypto
 * were used wrongly in both the code and the expectation.
 */
const vectors = [
  {
    data: Buffer.from('abc'),
    md5: '900150983cd24fb0d6963f7d28e17f72',
    sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  },
  {
    data: Buffer.from('The quick brown fox jumps over the lazy dog'),
    md5: '9e107d9d372bb6826bd81d3542a419d6',
    sha256: 'd7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592',
  },
  {
    data: Buffer.alloc(1_000_000, 'a'),
    md5: '7707d6ae4e027c70eea2a935c2296f21',
    sha256: 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
  },
] as const;

/** `data` cut into pieces of the given sizes, in turn (the last piece takes the rest). */
function cut(data: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length] ?? 1;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

test('many streams at once: updates interleaved chunk by chunk keep each stream its own digests', async () => {
  // Uneven chunk sizes, so streams run out at different rounds.
  const streams = vectors.map((v, i) => cut(v.data, [1 + i, 7, 4096 + i * 13]));
  const digests = vectors.map(() => new StreamDigests());
  const longest = Math.max(...streams.map((s) => s.length));
  for (let round = 0; round < longest; round++) {
    streams.forEach((chunks, i) => {
      const chunk = chunks[round];
      if (chunk) digests[i]!.update(chunk);
    });
    if (round % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  digests.forEach((d, i) => {
    const v = vectors[i]!;
    assert.deepEqual(d.digest(), { sizeBytes: v.data.length, md5: v.md5, sha256: v.sha256 });
  });
});

test('a chunk view into a larger buffer hashes only its own bytes', () => {
  // "abc" in the middle of a megabyte of other bytes: a hash that read the
  // whole underlying ArrayBuffer, or from its start, gives another digest.
  const big = Buffer.alloc(1 << 20, 0x5a);
  big.write('abc', 500_000, 'latin1');
  const view = big.subarray(500_000, 500_003);
  const d = new StreamDigests();
  d.update(view);
  const abc = vectors[0];
  assert.deepEqual(d.digest(), { sizeBytes: 3, md5: abc.md5, sha256: abc.sha256 });
});

test('digests equal node:crypto on random data', () => {
  const chunks = Array.from({ length: 40 }, () => randomBytes(1 + Math.floor(Math.random() * 70_000)));
  const d = new StreamDigests();
  for (const c of chunks) d.update(c);
  assert.deepEqual(d.digest(), expected(chunks));
});

test('a whole stream is consumed in order', async () => {
  const chunk = randomBytes(4 << 20);
  const chunks = Array.from({ length: 12 }, () => chunk);
  const d = new StreamDigests();
  await d.consume(Readable.from(chunks));
  assert.deepEqual(d.digest(), expected(chunks));
});

test('an empty stream', () => {
  assert.deepEqual(new StreamDigests().digest(), expected([]));
});

test('md5FromEtag reads only single-part ETags', () => {
  assert.equal(md5FromEtag('"0CC175B9C0F1B6A831C399E269772661"'), '0cc175b9c0f1b6a831c399e269772661');
  assert.equal(md5FromEtag('"0cc175b9c0f1b6a831c399e269772661-3"'), undefined);
  assert.equal(md5FromEtag(undefined), undefined);
});
