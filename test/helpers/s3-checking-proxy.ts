/**
 * A recording proxy in front of s3rver that holds uploads to what real S3
 * enforces (and to what cxrec promises), because s3rver does not: it keeps
 * a PUT cut off halfway, never checks a body against Content-Length or
 * Content-MD5, stores aws-chunked framing as object bytes, answers
 * AbortMultipartUpload with 405 and completes any list of parts.
 *
 * Every request is checked, a failing one is answered as S3 would (400
 * BadDigest, EntityTooSmall, InvalidPart, 404 NoSuchUpload, 412) and,
 * unless it is an ordinary answer, kept in `violations`; multipart uploads are tracked so a test can assert none
 * was left incomplete. Abort and ListMultipartUploads are answered here from
 * that tracking (s3rver has neither); a test may move an upload's
 * `initiated` back to make it look abandoned.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** S3's smallest part, except the last. */
const minPartBytes = 5 * 1024 * 1024;

export interface S3Violation {
  bucket: string;
  key: string;
  operation: string;
  problem: string;
}

export interface TrackedUpload {
  bucket: string;
  key: string;
  state: 'open' | 'completed' | 'aborted';
  parts: Map<number, { size: number; md5: string }>;
  /** When CreateMultipartUpload was answered; ListMultipartUploads reports it. */
  initiated: Date;
}

interface Refusal {
  status: number;
  code: string;
  problem: string;
  /** An ordinary S3 answer (abort of a finished upload, a failed precondition), not a broken promise. */
  expected?: boolean;
}

export class S3CheckingProxy {
  readonly violations: S3Violation[] = [];
  readonly uploads = new Map<string, TrackedUpload>();
  /** `bucket/key` of every object-level write (PUT, POST, DELETE), for the outside-the-prefix check. */
  readonly keysWritten: { bucket: string; key: string }[] = [];
  /** Current ETag per `bucket/key`, to honour `x-amz-copy-source-if-match`. */
  private readonly etags = new Map<string, string>();
  /**
   * Answers the next request it matches as S3 answers a body corrupted on
   * the wire (400 BadDigest), then clears itself.
   */
  corruptNext: ((operation: string, key: string) => boolean) | undefined;
  private server: Server | undefined;
  /**
   * Writes to one key go one at a time: S3 applies each request (and its
   * if-match) atomically, while s3rver writes an object's bytes and
   * metadata as separate files that concurrent requests interleave.
   */
  private readonly keyQueues = new Map<string, Promise<unknown>>();

  constructor(private readonly upstream: { host: string; port: number }) {}

  async listen(): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  openUploads(bucket: string): TrackedUpload[] {
    return [...this.uploads.values()].filter((u) => u.bucket === bucket && u.state === 'open');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const operation = operationOf(method, key, q, req.headers);
    if (key !== '' && method !== 'GET' && method !== 'HEAD') this.keysWritten.push({ bucket, key });

    if (key === '' || method === 'GET' || method === 'HEAD') {
      return this.process(operation, method, bucket, key, q, req, res, body);
    }
    const id = `${bucket}/${key}`;
    const run = (this.keyQueues.get(id) ?? Promise.resolve()).then(() =>
      this.process(operation, method, bucket, key, q, req, res, body),
    );
    this.keyQueues.set(
      id,
      run.catch(() => undefined),
    );
    return run;
  }

  private async process(
    operation: string,
    method: string,
    bucket: string,
    key: string,
    q: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
  ): Promise<void> {
    const refusal = this.check(operation, bucket, key, q, req, body);
    if (refusal) {
      if (refusal.expected !== true)
        this.violations.push({ bucket, key, operation, problem: refusal.problem });
      return reply(res, refusal);
    }
    if (operation === 'AbortMultipartUpload') {
      const upload = this.uploads.get(q.get('uploadId') ?? '');
      if (upload) upload.state = 'aborted';
      res.statusCode = 204;
      res.end();
      return;
    }
    if (operation === 'ListMultipartUploads') {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(this.listMultipartUploads(bucket, q));
      return;
    }
    if (this.corruptNext?.(operation, key)) {
      this.corruptNext = undefined;
      return reply(res, { status: 400, code: 'BadDigest', problem: 'corrupted on purpose' });
    }

    const upstream = await forward(this.upstream, req, body);
    this.record(operation, bucket, key, q, upstream, body);
    const headers = { ...upstream.headers };
    delete headers['transfer-encoding'];
    if (method !== 'HEAD') headers['content-length'] = String(upstream.body.length);
    res.writeHead(upstream.status, headers);
    res.end(upstream.body);
  }

  /** ListMultipartUploads as S3 answers it: open uploads by key then upload id, from the markers on, in pages. */
  private listMultipartUploads(bucket: string, q: URLSearchParams): string {
    const prefix = q.get('prefix') ?? '';
    const keyMarker = q.get('key-marker') ?? '';
    const idMarker = q.get('upload-id-marker') ?? '';
    const max = Math.min(Number(q.get('max-uploads') ?? 1000) || 1000, 1000);
    const all = [...this.uploads.entries()]
      .filter(([, u]) => u.bucket === bucket && u.state === 'open' && u.key.startsWith(prefix))
      .filter(([id, u]) => u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && id > idMarker))
      .sort(([ia, a], [ib, b]) => (a.key === b.key ? (ia < ib ? -1 : 1) : a.key < b.key ? -1 : 1));
    const page = all.slice(0, max);
    const last = page[page.length - 1];
    const truncated = all.length > page.length && last !== undefined;
    const uploads = page
      .map(
        ([id, u]) =>
          `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${xmlEscape(id)}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
      )
      .join('');
    return (
      `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Bucket>${xmlEscape(bucket)}</Bucket><KeyMarker>${xmlEscape(keyMarker)}</KeyMarker><UploadIdMarker>${xmlEscape(idMarker)}</UploadIdMarker>` +
      (truncated
        ? `<NextKeyMarker>${xmlEscape(last[1].key)}</NextKeyMarker><NextUploadIdMarker>${xmlEscape(last[0])}</NextUploadIdMarker>`
        : '') +
      `<Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>${uploads}</ListMultipartUploadsResult>`
    );
  }

  private check(
    operation: string,
    bucket: string,
    key: string,
    q: URLSearchParams,
    req: IncomingMessage,
    body: Buffer,
  ): Refusal | undefined {
    const h = req.headers;
    if (operation === 'PutObject' || operation === 'UploadPart') {
      const encoding = h['content-encoding'] ?? '';
      const sha = String(h['x-amz-content-sha256'] ?? '');
      if (encoding.includes('aws-chunked') || sha.startsWith('STREAMING')) {
        return {
          status: 400,
          code: 'InvalidRequest',
          problem: 'aws-chunked body (s3rver would store the framing)',
        };
      }
      if (Number(h['content-length']) !== body.length) {
        return {
          status: 400,
          code: 'IncompleteBody',
          problem: `Content-Length ${h['content-length']} but ${body.length} bytes`,
        };
      }
      const md5 = createHash('md5').update(body).digest('base64');
      if (h['content-md5'] === undefined)
        return { status: 400, code: 'InvalidRequest', problem: 'no Content-MD5' };
      if (h['content-md5'] !== md5)
        return { status: 400, code: 'BadDigest', problem: 'Content-MD5 does not match the body' };
      if (operation === 'PutObject' && h['x-amz-meta-md5'] !== undefined) {
        const hex = Buffer.from(md5, 'base64').toString('hex');
        const sha256 = createHash('sha256').update(body).digest('hex');
        if (h['x-amz-meta-md5'] !== hex || h['x-amz-meta-sha256'] !== sha256) {
          return {
            status: 400,
            code: 'InvalidRequest',
            problem: 'md5/sha256 metadata do not describe the body',
          };
        }
      }
    }
    if (
      operation === 'UploadPart' ||
      operation === 'CompleteMultipartUpload' ||
      operation === 'AbortMultipartUpload'
    ) {
      const upload = this.uploads.get(q.get('uploadId') ?? '');
      if (!upload || upload.state !== 'open' || upload.bucket !== bucket || upload.key !== key) {
        return {
          status: 404,
          code: 'NoSuchUpload',
          problem: `${operation} of an unknown or finished upload`,
          expected: operation === 'AbortMultipartUpload',
        };
      }
      if (operation === 'CompleteMultipartUpload') return completeProblem(upload, body.toString('utf8'));
    }
    if (operation === 'CopyObject') {
      const ifMatch = h['x-amz-copy-source-if-match'];
      const source = decodeURIComponent(String(h['x-amz-copy-source'] ?? '')).replace(/^\//, '');
      if (typeof ifMatch === 'string' && unquote(ifMatch) !== this.etags.get(source)) {
        return {
          status: 412,
          code: 'PreconditionFailed',
          problem: 'copy source changed (if-match)',
          expected: true,
        };
      }
    }
    return undefined;
  }

  private record(
    operation: string,
    bucket: string,
    key: string,
    q: URLSearchParams,
    upstream: Upstream,
    body: Buffer,
  ): void {
    if (upstream.status >= 300) return;
    const id = `${bucket}/${key}`;
    const etag = upstream.headers.etag;
    switch (operation) {
      case 'CreateMultipartUpload': {
        const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(upstream.body.toString('utf8'))?.[1];
        if (uploadId) {
          this.uploads.set(uploadId, { bucket, key, state: 'open', parts: new Map(), initiated: new Date() });
        }
        break;
      }
      case 'UploadPart':
        this.uploads.get(q.get('uploadId') ?? '')?.parts.set(Number(q.get('partNumber')), {
          size: body.length,
          md5: createHash('md5').update(body).digest('hex'),
        });
        break;
      case 'CompleteMultipartUpload': {
        const upload = this.uploads.get(q.get('uploadId') ?? '');
        if (upload) upload.state = 'completed';
        const completed = /<ETag>([^<]+)<\/ETag>/.exec(upstream.body.toString('utf8'))?.[1];
        if (completed) this.etags.set(id, unquote(completed.replace(/&quot;/g, '"')));
        break;
      }
      case 'PutObject':
        if (typeof etag === 'string') this.etags.set(id, unquote(etag));
        break;
      case 'CopyObject': {
        const copied = /<ETag>([^<]+)<\/ETag>/.exec(upstream.body.toString('utf8'))?.[1];
        if (copied) this.etags.set(id, unquote(copied.replace(/&quot;/g, '"')));
        break;
      }
      case 'DeleteObject':
        this.etags.delete(id);
        break;
      default:
    }
  }
}

/** What real S3 checks on CompleteMultipartUpload (s3rver checks none of it). */
function completeProblem(upload: TrackedUpload, xml: string): Refusal | undefined {
  const parts = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
    number: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1] ?? '')?.[1]),
    etag: unquote((/<ETag>([^<]+)<\/ETag>/.exec(m[1] ?? '')?.[1] ?? '').replace(/&quot;/g, '"')),
  }));
  if (parts.length === 0) return { status: 400, code: 'MalformedXML', problem: 'no parts' };
  for (const [i, part] of parts.entries()) {
    if (i > 0 && part.number <= (parts[i - 1]?.number ?? 0)) {
      return { status: 400, code: 'InvalidPartOrder', problem: 'parts not in ascending order' };
    }
    const stored = upload.parts.get(part.number);
    if (!stored || stored.md5 !== part.etag) {
      return {
        status: 400,
        code: 'InvalidPart',
        problem: `part ${part.number} was not uploaded with that ETag`,
      };
    }
    if (i < parts.length - 1 && stored.size < minPartBytes) {
      return { status: 400, code: 'EntityTooSmall', problem: `part ${part.number} is ${stored.size} bytes` };
    }
  }
  return undefined;
}

function operationOf(method: string, key: string, q: URLSearchParams, h: IncomingMessage['headers']): string {
  if (key === '' && method === 'GET' && q.has('uploads')) return 'ListMultipartUploads';
  if (key === '') return `${method} bucket`;
  if (method === 'POST' && q.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT' && q.has('uploadId')) return 'UploadPart';
  if (method === 'DELETE' && q.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'GET' && q.has('uploadId')) return 'ListParts';
  if (method === 'PUT' && h['x-amz-copy-source'] !== undefined) return 'CopyObject';
  if (method === 'PUT') return 'PutObject';
  if (method === 'DELETE') return 'DeleteObject';
  return `${method} object`;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function unquote(etag: string): string {
  return etag.replace(/"/g, '').toLowerCase();
}

function reply(res: ServerResponse, refusal: Refusal): void {
  res.writeHead(refusal.status, { 'content-type': 'application/xml' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${refusal.code}</Code><Message>${refusal.problem}</Message></Error>`,
  );
}

interface Upstream {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

function forward(
  upstream: { host: string; port: number },
  req: IncomingMessage,
  body: Buffer,
): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const out = request(
      {
        host: upstream.host,
        port: upstream.port,
        method: req.method,
        path: req.url,
        // The Host header is part of the SigV4 signature: keep the client's.
        headers: { ...withoutTransferEncoding(req.headers), 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}

function withoutTransferEncoding(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const copy = { ...headers };
  delete copy['transfer-encoding'];
  return copy;
}
