/**
 * md5 and sha256 of a stream, computed while it passes. md5 is what CXone's
 * ETag and S3's Content-MD5 speak; sha256 is what auditors ask for.
 *
 * `StreamDigests` hashes on the calling thread (`verify` reads stored
 * objects with it). Downloads hash off the main thread through
 * `hash-pool.ts`: md5 (≈600 MB/s per core) plus sha256 (≈1.5 GB/s) on the
 * thread that also receives and writes capped an export near 280 MB/s.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';

export interface DigestResult {
  sizeBytes: number;
  md5: string;
  sha256: string;
}

export class StreamDigests {
  private readonly md5: Hash = createHash('md5');
  private readonly sha256: Hash = createHash('sha256');
  private bytes = 0;

  update(chunk: Buffer): void {
    this.md5.update(chunk);
    this.sha256.update(chunk);
    this.bytes += chunk.length;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Feeds a whole stream (e.g. bytes staged by an earlier attempt). */
  async consume(stream: Readable, signal?: AbortSignal): Promise<void> {
    for await (const chunk of stream) {
      signal?.throwIfAborted();
      this.update(chunk as Buffer);
    }
  }

  digest(): DigestResult {
    return { sizeBytes: this.bytes, md5: this.md5.digest('hex'), sha256: this.sha256.digest('hex') };
  }
}

/** The md5 an ETag carries: the quoted hex of a single-part object; `-N` or absent carry none. */
export function md5FromEtag(etag: string | undefined): string | undefined {
  const m = etag === undefined ? null : /^(?:W\/)?"?([0-9a-f]{32})"?$/i.exec(etag.trim());
  return m?.[1]?.toLowerCase();
}
