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

test('digests in the hash workers equal node:crypto, for many streams at once', async () => {
  const streams = Array.from({ length: 6 }, () =>
    Array.from({ length: 40 }, () => randomBytes(1 + Math.floor(Math.random() * 70_000))),
  );
  const results = await Promise.all(
    streams.map(async (chunks) => {
      const d = new StreamDigests();
      for (const c of chunks) await d.update(c);
      return d.digest();
    }),
  );
  results.forEach((r, i) => assert.deepEqual(r, expected(streams[i]!)));
});

test('a chunk view into a larger buffer hashes only its own bytes', async () => {
  const big = randomBytes(1 << 20);
  const view = big.subarray(1000, 5000);
  const d = new StreamDigests();
  await d.update(view);
  assert.deepEqual(await d.digest(), expected([view]));
});

test('more than the in-flight limit waits for the workers and stays correct', async () => {
  const chunk = randomBytes(4 << 20);
  const chunks = Array.from({ length: 12 }, () => chunk);
  const d = new StreamDigests();
  await d.consume(Readable.from(chunks));
  assert.deepEqual(await d.digest(), expected(chunks));
});

test('an empty stream and a disposed one', async () => {
  const empty = new StreamDigests();
  assert.deepEqual(await empty.digest(), expected([]));
  const dropped = new StreamDigests();
  await dropped.update(Buffer.from('abc'));
  dropped.dispose();
});

test('md5FromEtag reads only single-part ETags', () => {
  assert.equal(md5FromEtag('"0CC175B9C0F1B6A831C399E269772661"'), '0cc175b9c0f1b6a831c399e269772661');
  assert.equal(md5FromEtag('"0cc175b9c0f1b6a831c399e269772661-3"'), undefined);
  assert.equal(md5FromEtag(undefined), undefined);
});
