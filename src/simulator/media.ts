/**
 * The media objects behind presigned URLs. Their bytes are never stored:
 * each object is the AES-128-CTR keystream of a key derived from the seed
 * and the object's key, with a WAV or MPEG header laid over the start. CTR
 * mode makes any offset reachable in O(1) (the counter is the 16-byte block
 * number), so Range requests and a 2 GiB object cost one 64 KiB chunk of
 * memory at a time, and the cipher runs natively at GB/s.
 *
 * md5/sha256 are computed by streaming the object once, on demand, and
 * cached: about 4–6 s of CPU per GiB on a small machine, paid only by an
 * md5 ETag or a truth request, with the event loop yielded every 4 MiB.
 */
import { createCipheriv, createHash, type Cipher } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

import type { Channel, EtagKind, MediaContentType } from './options.js';

const chunkBytes = 64 * 1024;
const zeros = Buffer.alloc(chunkBytes);

export interface ObjectHashes {
  md5: string;
  sha256: string;
}

/**
 * `C` is the set of content types a simulator serves: the recording API's
 * WAV/MPEG by default, `audio/mp4` too for the platform dialect.
 */
export interface MediaObject<C extends MediaObjectContentType = MediaContentType> {
  /** The object key as it appears in the URL path after `/media/`, percent-encoded. */
  readonly key: string;
  readonly recordingId: string;
  readonly channel: Channel;
  readonly sizeBytes: number;
  readonly contentType: C;
  readonly etagKind: EtagKind;
  /** A bare header and no audio: the file behind a channel that was never captured. */
  readonly headerOnly: boolean;
  /** AES-128 key of the keystream. */
  readonly contentKey: Buffer;
  /** Hashes by prefix length, so a Processing object cut short has its own. */
  readonly hashCache: Map<number, Promise<ObjectHashes>>;
}

export type MediaObjectContentType = MediaContentType | 'audio/mp4';

/** A bare WAV header is 44 bytes; a bare ID3v2 tag 10. Both are far below the contract's 1024. */
export function headerOnlySize(contentType: MediaContentType): number {
  return contentType === 'audio/wav' ? 44 : 10;
}

export function createMediaObject<C extends MediaObjectContentType = MediaContentType>(
  fields: Omit<MediaObject<C>, 'contentKey' | 'hashCache'>,
  seed: number,
): MediaObject<C> {
  const contentKey = createHash('sha256').update(`${seed}\0${fields.key}`).digest().subarray(0, 16);
  return { ...fields, contentKey, hashCache: new Map() };
}

/** The header laid over the first bytes of an object of `size` bytes. */
function headerFor(obj: AnyMediaObject): Buffer {
  if (obj.contentType === 'audio/mp4') return mp4Header(obj.sizeBytes);
  if (obj.contentType === 'audio/wav') {
    const h = Buffer.alloc(44);
    const dataBytes = Math.max(0, obj.sizeBytes - 44);
    h.write('RIFF', 0, 'ascii');
    // RIFF sizes are 32-bit; a 2 GiB+ file saturates them like real recorders do.
    h.writeUInt32LE(Math.min(0xffffffff, obj.sizeBytes - 8 < 0 ? 0 : obj.sizeBytes - 8), 4);
    h.write('WAVEfmt ', 8, 'ascii');
    h.writeUInt32LE(16, 16);
    h.writeUInt16LE(1, 20); // PCM
    h.writeUInt16LE(1, 22); // mono
    h.writeUInt32LE(8000, 24);
    h.writeUInt32LE(16000, 28);
    h.writeUInt16LE(2, 32);
    h.writeUInt16LE(16, 34);
    h.write('data', 36, 'ascii');
    h.writeUInt32LE(Math.min(0xffffffff, dataBytes), 40);
    return h;
  }
  // ID3v2.4 tag with no frames, then (when there is audio) an MPEG-1 Layer III frame sync.
  const tag = Buffer.from([0x49, 0x44, 0x33, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
  return obj.headerOnly ? tag : Buffer.concat([tag, Buffer.from([0xff, 0xfb, 0x90, 0x64])]);
}

/** Any media object, whatever content types its simulator serves. */
export type AnyMediaObject = MediaObject<MediaObjectContentType>;

/**
 * An ISO-BMFF `ftyp` box (M4A brand) and the header of an `mdat` box that
 * runs to the end of the object, so a player sees an MP4 shape. Objects
 * too small for both get as much of the `ftyp` box as fits.
 */
function mp4Header(size: number): Buffer {
  const ftyp = Buffer.alloc(24);
  ftyp.writeUInt32BE(24, 0);
  ftyp.write('ftypM4A ', 4, 'ascii');
  ftyp.writeUInt32BE(0, 12);
  ftyp.write('M4A isom', 16, 'ascii');
  if (size < 32) return ftyp;
  const mdat = Buffer.alloc(8);
  // mdat sizes are 32-bit here; a larger object would need a 64-bit box, which no call reaches.
  mdat.writeUInt32BE(Math.min(0xffffffff, size - 24), 0);
  mdat.write('mdat', 4, 'ascii');
  return Buffer.concat([ftyp, mdat]);
}

/**
 * Produces an object's bytes from `start` onward, sequentially. One cipher
 * per reader: CTR continues where the previous call stopped.
 */
class ContentGenerator {
  private readonly header: Buffer;
  private readonly cipher: Cipher;
  private pos: number;

  constructor(obj: AnyMediaObject, start: number) {
    this.header = headerFor(obj);
    const block = Math.floor(start / 16);
    const iv = Buffer.alloc(16);
    // The block number fills the low 8 bytes; it never carries into the high ones (2^64 blocks).
    iv.writeBigUInt64BE(BigInt(block), 8);
    this.cipher = createCipheriv('aes-128-ctr', obj.contentKey, iv);
    const skip = start % 16;
    if (skip > 0) this.cipher.update(zeros.subarray(0, skip));
    this.pos = start;
  }

  next(length: number): Buffer {
    const out = this.cipher.update(length <= chunkBytes ? zeros.subarray(0, length) : Buffer.alloc(length));
    if (this.pos < this.header.length) {
      this.header.copy(out, 0, this.pos, Math.min(this.header.length, this.pos + length));
    }
    this.pos += length;
    return out;
  }
}

/** Bytes `[start, endExclusive)` of the object, as a stream with normal backpressure. */
export function mediaStream(
  obj: AnyMediaObject,
  start: number,
  endExclusive: number,
  onChunk: (bytes: number) => void = () => undefined,
): Readable {
  let pos = start;
  let generator: ContentGenerator | undefined;
  return new Readable({
    highWaterMark: chunkBytes,
    read() {
      if (pos >= endExclusive) {
        this.push(null);
        return;
      }
      generator ??= new ContentGenerator(obj, start);
      const n = Math.min(chunkBytes, endExclusive - pos);
      pos += n;
      onChunk(n);
      this.push(generator.next(n));
    },
  });
}

/** md5 and sha256 of the object's first `length` bytes (the whole object by default), cached. */
export function objectHashes(obj: AnyMediaObject, length = obj.sizeBytes): Promise<ObjectHashes> {
  let cached = obj.hashCache.get(length);
  if (!cached) {
    cached = hashPrefix(obj, length);
    obj.hashCache.set(length, cached);
  }
  return cached;
}

async function hashPrefix(obj: AnyMediaObject, length: number): Promise<ObjectHashes> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const generator = new ContentGenerator(obj, 0);
  for (let pos = 0, sinceYield = 0; pos < length;) {
    const n = Math.min(chunkBytes, length - pos);
    const chunk = generator.next(n);
    md5.update(chunk);
    sha256.update(chunk);
    pos += n;
    sinceYield += n;
    if (sinceYield >= 4 * 1024 * 1024) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
  return { md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}

/**
 * The ETag header value for the first `length` bytes, or undefined for none.
 * Multipart ETags look like S3's (`"<32 hex>-<parts>"`) but are derived from
 * the key: by definition they carry no md5 a client could check.
 */
export async function etagFor(
  obj: AnyMediaObject,
  kind: EtagKind,
  length = obj.sizeBytes,
): Promise<string | undefined> {
  switch (kind) {
    case 'none':
      return undefined;
    case 'md5':
      return `"${(await objectHashes(obj, length)).md5}"`;
    case 'multipart': {
      const parts = Math.max(1, Math.ceil(length / (8 * 1024 * 1024)));
      const fake = createHash('md5').update(`multipart\0${obj.key}\0${length}`).digest('hex');
      return `"${fake}-${parts}"`;
    }
  }
}

export type ByteRange =
  { kind: 'full' } | { kind: 'partial'; start: number; endInclusive: number } | { kind: 'unsatisfiable' };

/**
 * Parses a `Range` header against an object of `size` bytes the way S3
 * does: `bytes=N-`, `bytes=N-M` and `bytes=-N`; a syntax it does not
 * understand, or several ranges, is ignored (200 with the whole object).
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return { kind: 'full' };
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), endInclusive: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return { kind: 'full' };
  return { kind: 'partial', start, endInclusive: end };
}
