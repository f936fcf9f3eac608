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

test('digests equal node:crypto, for many streams at once', async () => {
  const streams = Array.from({ length: 6 }, () =>
    Array.from({ length: 40 }, () => randomBytes(1 + Math.floor(Math.random() * 70_000))),
  );
  const results = await Promise.all(
    streams.map(async (chunks) => {
      const d = new StreamDigests();
      for (const c of chunks) {
        d.update(c);
        await new Promise((r) => setImmediate(r));
      }
      return d.digest();
    }),
  );
  results.forEach((r, i) => assert.deepEqual(r, expected(streams[i]!)));
});

test('a chunk view into a larger buffer hashes only its own bytes', () => {
  const big = randomBytes(1 << 20);
  const view = big.subarray(1000, 5000);
  const d = new StreamDigests();
  d.update(view);
  assert.deepEqual(d.digest(), expected([view]));
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
