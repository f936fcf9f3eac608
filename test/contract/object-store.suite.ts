/**
 * The promises of `ObjectStore` (src/storage/object-store.ts), run against
 * every backend: local, S3 (s3rver behind a checking proxy) and Azure
 * (Azurite). A backend passes when it keeps every promise the pipeline
 * leans on; differences the interface allows (resume across a crash, digests
 * on `head`) are declared by the backend's test file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { CxrecError } from '../../src/errors.js';
import type { ObjectStore, StagedUpload } from '../../src/storage/object-store.js';

export interface ObjectStoreFixture {
  store: ObjectStore;
  /** Removes the bucket, container or directory. */
  cleanup(): Promise<void>;
  /**
   * Every visible key in the whole bucket, container or parent directory,
   * the store's prefix included: what a reader could see anywhere.
   */
  listAllKeys(): Promise<string[]>;
  /** A second store on the same root, as the next process would open it. */
  reopen?(): Promise<ObjectStore>;
  /** Asserts the backend holds no staged leftovers (incomplete multipart uploads, .partial files). */
  assertNoLeftovers?(): Promise<void>;
}

export interface ObjectStoreTraits {
  /** Where the store's root is within `listAllKeys()`: `prefix/`, `root/`. */
  rootPrefix: string;
  /** `openUpload` with a parked upload's token gets its bytes back (local); else it restarts at 0. */
  resumesAcrossCrash: boolean;
  /** `head` returns md5 and sha256. */
  keepsDigests: boolean;
  /**
   * `commit` hashes the staged bytes itself and refuses a caller's md5 that
   * differs (S3 and Azure must, for Content-MD5); local checks the size only.
   */
  checksMd5AtCommit: boolean;
  /** Objects in the upload tests span this many bytes, to cross part boundaries. */
  largeObjectBytes: number;
}

const chunkBytes = 64 * 1024;

interface Body {
  bytes: Buffer;
  md5: string;
  sha256: string;
}

function body(size: number): Body {
  const bytes = randomBytes(size);
  return {
    bytes,
    md5: createHash('md5').update(bytes).digest('hex'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function writeRange(upload: StagedUpload, bytes: Buffer, from: number, to: number): Promise<void> {
  for (let offset = from; offset < to; offset += chunkBytes) {
    await upload.write(bytes.subarray(offset, Math.min(offset + chunkBytes, to)));
  }
}

function commitOptions(b: Body, contentType = 'audio/wav') {
  return { sizeBytes: b.bytes.length, md5: b.md5, sha256: b.sha256, contentType };
}

export function objectStoreSuite(
  name: string,
  open: () => Promise<ObjectStoreFixture>,
  traits: ObjectStoreTraits,
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let fx: ObjectStoreFixture;
    let store: ObjectStore;

    beforeEach(async () => {
      fx = await open();
      store = fx.store;
    });

    afterEach(async () => {
      try {
        const outside = (await fx.listAllKeys()).filter((k) => !k.startsWith(traits.rootPrefix));
        assert.deepEqual(outside, [], 'nothing is written outside the store root');
      } finally {
        await store.close?.();
        await fx.cleanup();
      }
    });

    const visible = async (under = 'recordings/'): Promise<string[]> =>
      (await fx.listAllKeys()).filter((k) => k.startsWith(traits.rootPrefix + under)).sort();

    /** What a finished test may leave: the objects it committed, nothing staged. */
    const assertOnlyCommitted = async (keys: string[]): Promise<void> => {
      const all = (await fx.listAllKeys()).map((k) => k.slice(traits.rootPrefix.length)).sort();
      assert.deepEqual(all, [...keys].sort(), 'only committed objects remain under the root');
      await fx.assertNoLeftovers?.();
    };

    it('names its location', () => {
      assert.ok(store.location.length > 0);
    });

    it('puts, heads, reads and deletes a small object', async () => {
      const key = 'metadata/rec-1.json';
      const b = body(300);
      const info = await store.putSmall(key, b.bytes, { contentType: 'application/json' });
      assert.deepEqual(info, { key, sizeBytes: 300, md5: b.md5, sha256: b.sha256 });
      const head = await store.head(key);
      assert.equal(head?.sizeBytes, 300);
      if (traits.keepsDigests) {
        assert.equal(head.md5, b.md5);
        assert.equal(head.sha256, b.sha256);
      }
      assert.deepEqual(await readAll(await store.read(key)), b.bytes);
      await store.delete(key);
      assert.equal(await store.head(key), undefined);
      await store.delete(key); // deleting what is gone is not an error
      await assertOnlyCommitted([]);
    });

    it('head of a missing key is undefined and read of it fails with a storage error', async () => {
      assert.equal(await store.head('recordings/none_combined.wav'), undefined);
      await assert.rejects(store.read('recordings/none_combined.wav'), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'storage');
        return true;
      });
    });

    it('putSmall replaces an object atomically', async () => {
      const key = 'metadata/rec-2.json';
      await store.putSmall(key, Buffer.from('{"v":1}'), { contentType: 'application/json' });
      await store.putSmall(key, Buffer.from('{"v":22}'), { contentType: 'application/json' });
      assert.equal((await readAll(await store.read(key))).toString(), '{"v":22}');
      await assertOnlyCommitted([key]);
    });

    it('stages a large object invisibly, then commits it whole', async () => {
      const key = 'recordings/rec-3_combined.wav';
      const b = body(traits.largeObjectBytes);
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
      assert.equal(upload.stagedBytes, 0);
      assert.ok(upload.resumeToken.length > 0);
      await writeRange(upload, b.bytes, 0, b.bytes.length);
      assert.equal(upload.bytesWritten, b.bytes.length);
      assert.deepEqual(await visible(), [], 'nothing under recordings/ before commit');
      assert.equal(await store.head(key), undefined);

      const info = await upload.commit(commitOptions(b));
      assert.deepEqual(info, { key, sizeBytes: b.bytes.length, md5: b.md5, sha256: b.sha256 });
      const head = await store.head(key);
      assert.equal(head?.sizeBytes, b.bytes.length);
      if (traits.keepsDigests) {
        assert.equal(head.md5, b.md5);
        assert.equal(head.sha256, b.sha256);
      }
      assert.equal(
        createHash('md5')
          .update(await readAll(await store.read(key)))
          .digest('hex'),
        b.md5,
      );
      await assert.rejects(upload.write(Buffer.from('late')), CxrecError, 'no writes after commit');
      await assertOnlyCommitted([key]);
    });

    it('commits a one-byte object', async () => {
      const key = 'recordings/rec-4_agent.mp3';
      const b = body(1);
      const upload = await store.openUpload(key, { contentType: 'audio/mpeg', sizeBytes: 1 });
      await upload.write(b.bytes);
      await upload.commit(commitOptions(b, 'audio/mpeg'));
      assert.deepEqual(await readAll(await store.read(key)), b.bytes);
      await assertOnlyCommitted([key]);
    });

    it('refuses to commit on a size or md5 mismatch and leaves the old object in place', async () => {
      const key = 'recordings/rec-5_combined.wav';
      const old = body(1000);
      const oldUpload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 1000 });
      await oldUpload.write(old.bytes);
      await oldUpload.commit(commitOptions(old));

      const b = body(traits.largeObjectBytes);
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
      await writeRange(upload, b.bytes, 0, b.bytes.length - 1); // one byte short
      await assert.rejects(upload.commit(commitOptions(b)), (err: unknown) => {
        assert.ok(err instanceof CxrecError);
        assert.equal(err.code, 'integrity');
        assert.match(err.message, new RegExp(key.replace(/[.]/g, '\\.')));
        return true;
      });
      await upload.write(b.bytes.subarray(b.bytes.length - 1));
      if (traits.checksMd5AtCommit) {
        await assert.rejects(upload.commit({ ...commitOptions(b), md5: body(1).md5 }), CxrecError);
        assert.deepEqual(await readAll(await store.read(key)), old.bytes, 'the old object is untouched');
      }

      await upload.abort();
      assert.deepEqual(await readAll(await store.read(key)), old.bytes);
      assert.deepEqual(await visible(), [traits.rootPrefix + key]);
      await assertOnlyCommitted([key]);
    });

    it('abort discards everything staged and leaves nothing visible', async () => {
      const key = 'recordings/rec-6_caller.wav';
      const b = body(traits.largeObjectBytes);
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
      await writeRange(upload, b.bytes, 0, b.bytes.length);
      await upload.abort();
      await upload.abort(); // idempotent
      assert.equal(await store.head(key), undefined);
      await assertOnlyCommitted([]);
    });

    it('resumes in process: a cancelled write counts nothing, later writes continue', async () => {
      const key = 'recordings/rec-7_combined.wav';
      const b = body(traits.largeObjectBytes);
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
      const half = Math.floor(b.bytes.length / 2);
      await writeRange(upload, b.bytes, 0, half);
      // The media transfer broke: a cancelled write is refused without counting...
      const cancelled = AbortSignal.abort(new Error('media connection reset'));
      await assert.rejects(upload.write(b.bytes.subarray(half, half + 10), { signal: cancelled }));
      assert.equal(upload.bytesWritten, half);
      // ...and after a pause and a Range request the rest follows.
      await new Promise((r) => setTimeout(r, 50));
      await writeRange(upload, b.bytes, upload.bytesWritten, b.bytes.length);
      await upload.commit(commitOptions(b));
      assert.deepEqual(await readAll(await store.read(key)), b.bytes);
      await assertOnlyCommitted([key]);
    });

    it('resumes across a restart with the resume token (or restarts at 0 where bytes cannot be read back)', async () => {
      const key = 'recordings/rec-8_combined.wav';
      const b = body(traits.largeObjectBytes);
      const first = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
      const cut = Math.floor(b.bytes.length * 0.6);
      await writeRange(first, b.bytes, 0, cut);
      await first.park();
      assert.deepEqual(await visible(), [], 'a parked upload is invisible');

      const next = (await fx.reopen?.()) ?? store;
      try {
        const resumed = await next.openUpload(key, {
          contentType: 'audio/wav',
          sizeBytes: b.bytes.length,
          resumeToken: first.resumeToken,
        });
        if (traits.resumesAcrossCrash) {
          assert.equal(resumed.stagedBytes, cut);
          const readStaged = resumed.readStaged?.bind(resumed);
          assert.ok(readStaged, 'readStaged is defined when bytes are staged');
          assert.deepEqual(await readAll(readStaged()), b.bytes.subarray(0, cut));
        } else {
          assert.equal(resumed.stagedBytes, 0);
        }
        assert.equal(resumed.bytesWritten, resumed.stagedBytes);
        await writeRange(resumed, b.bytes, resumed.stagedBytes, b.bytes.length);
        await resumed.commit(commitOptions(b));
        assert.deepEqual(await readAll(await next.read(key)), b.bytes);
      } finally {
        if (next !== store) await next.close?.();
      }
      await assertOnlyCommitted([key]);
    });

    it('discardUpload removes a parked upload, and ignores tokens it does not know', async () => {
      const key = 'recordings/rec-9_agent.wav';
      const b = body(traits.largeObjectBytes);
      const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
      await writeRange(upload, b.bytes, 0, b.bytes.length);
      await upload.park();
      await store.discardUpload(key, upload.resumeToken);
      await store.discardUpload(key, upload.resumeToken); // twice is fine
      await store.discardUpload(key, 'not-a-token-of-ours');
      assert.equal(await store.head(key), undefined);
      await assertOnlyCommitted([]);

      // A new upload of the key starts empty.
      const again = await store.openUpload(key, {
        contentType: 'audio/wav',
        sizeBytes: b.bytes.length,
        resumeToken: upload.resumeToken,
      });
      assert.equal(again.stagedBytes, 0);
      await again.abort();
      await assertOnlyCommitted([]);
    });

    it('refuses hostile keys on every verb and writes nothing', async () => {
      const hostile = [
        '../escape',
        '/abs',
        'recordings/../../x',
        'a//b',
        'nul\u0000',
        '.partial/x',
        '',
        'a\\..\\b',
      ];
      const before = await fx.listAllKeys();
      for (const key of hostile) {
        const refused = (err: unknown): boolean => {
          assert.ok(err instanceof CxrecError, `${JSON.stringify(key)}: ${String(err)}`);
          assert.equal(err.code, 'storage');
          return true;
        };
        await assert.rejects(store.head(key), refused);
        await assert.rejects(store.read(key), refused);
        await assert.rejects(store.delete(key), refused);
        await assert.rejects(
          store.putSmall(key, Buffer.from('x'), { contentType: 'application/json' }),
          refused,
        );
        await assert.rejects(store.openUpload(key, { contentType: 'audio/wav', sizeBytes: 1 }), refused);
        await assert.rejects(store.discardUpload(key, 'token'), refused);
      }
      assert.deepEqual(await fx.listAllKeys(), before);
    });

    it('two writers of one key: at least one wins and the object is whole and one of theirs', async () => {
      const key = 'recordings/rec-10_combined.wav';
      const bodies = [body(traits.largeObjectBytes), body(traits.largeObjectBytes)];
      const outcomes = await Promise.allSettled(
        bodies.map(async (b, i) => {
          await new Promise((r) => setTimeout(r, i * 5));
          const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
          try {
            await writeRange(upload, b.bytes, 0, b.bytes.length);
            return await upload.commit(commitOptions(b));
          } catch (err) {
            await upload.abort();
            throw err;
          }
        }),
      );
      const winners = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.md5] : []));
      assert.ok(
        winners.length >= 1,
        `at least one writer commits: ${outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok')).join('; ')}`,
      );
      for (const o of outcomes) {
        if (o.status === 'rejected') assert.ok(o.reason instanceof CxrecError, String(o.reason));
      }
      const stored = createHash('md5')
        .update(await readAll(await store.read(key)))
        .digest('hex');
      assert.ok(winners.includes(stored), 'the visible object is whole and was written by a winner');
      const head = await store.head(key);
      assert.equal(head?.sizeBytes, traits.largeObjectBytes);
      if (traits.keepsDigests) assert.equal(head.md5, stored, 'metadata describes the visible bytes');
      await assertOnlyCommitted([key]);
    });

    it('sweepStaging keeps an upload whose token is kept, and every committed object', async () => {
      if (!store.sweepStaging) return;
      const done = body(1000);
      const committed = await store.openUpload('recordings/rec-11_combined.wav', {
        contentType: 'audio/wav',
        sizeBytes: done.bytes.length,
      });
      await committed.write(done.bytes);
      await committed.commit(commitOptions(done));

      const key = 'recordings/rec-12_combined.wav';
      const b = body(traits.largeObjectBytes);
      const parked = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: b.bytes.length });
      const cut = Math.floor(b.bytes.length * 0.6);
      await writeRange(parked, b.bytes, 0, cut);
      await parked.park();
      await store.sweepStaging({ keepTokens: new Set([parked.resumeToken]) });

      const resumed = await store.openUpload(key, {
        contentType: 'audio/wav',
        sizeBytes: b.bytes.length,
        resumeToken: parked.resumeToken,
      });
      assert.equal(resumed.stagedBytes, traits.resumesAcrossCrash ? cut : 0, 'the kept upload survived');
      await writeRange(resumed, b.bytes, resumed.stagedBytes, b.bytes.length);
      await resumed.commit(commitOptions(b));
      assert.equal(await store.sweepStaging({ keepTokens: new Set() }), 0, 'nothing left to sweep');
      assert.deepEqual(await readAll(await store.read('recordings/rec-11_combined.wav')), done.bytes);
      await assertOnlyCommitted(['recordings/rec-11_combined.wav', key]);
    });

    it('probe writes and removes its own test object', async () => {
      await store.probe();
      await assertOnlyCommitted([]);
    });

    it('honours an aborted signal before doing anything', async () => {
      const signal = AbortSignal.abort();
      await assert.rejects(store.head('recordings/x_combined.wav', { signal }));
      await assert.rejects(
        store.putSmall('metadata/x.json', Buffer.from('{}'), { contentType: 'application/json', signal }),
      );
      await assertOnlyCommitted([]);
    });
  });
}
