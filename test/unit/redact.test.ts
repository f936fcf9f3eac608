import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';

import { CxrecError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { safeUrl, scrubText } from '../../src/redact.js';

const presigned =
  'https://cxone-media.s3.amazonaws.com/rec/abc.wav?AWSAccessKeyId=AKIAXYZ&Signature=s3cr3tSig%2B&Expires=1705334400';

function capture(): { stream: Writable; lines: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines: () => chunks.join('') };
}

describe('redaction', () => {
  test('presigned query strings and bearer tokens are scrubbed from text', () => {
    const out = scrubText(`GET ${presigned} with Authorization: Bearer eyJhbGciOi.abc.def`);
    assert.doesNotMatch(out, /s3cr3tSig|AKIAXYZ|eyJhbGciOi/);
    assert.match(out, /Signature=\[REDACTED\]/);
    assert.doesNotMatch(scrubText('https://h/x?X-Amz-Signature=abc&sig=def'), /abc|def/);
  });

  test('safeUrl keeps scheme, host and path only', () => {
    assert.equal(safeUrl(presigned), 'https://cxone-media.s3.amazonaws.com/rec/abc.wav');
  });

  test('error messages are scrubbed', () => {
    const err = new CxrecError('network', `fetch of ${presigned} failed`, { context: { recordingId: 'r1' } });
    assert.doesNotMatch(err.message, /s3cr3tSig|AKIAXYZ/);
    assert.match(err.message, /\[recordingId=r1\]$/);
  });

  test('no secret reaches a log line at any level', () => {
    const { stream, lines } = capture();
    const log = createLogger({ level: 'debug', pretty: false, destination: stream });
    log.debug(
      {
        authorization: 'Bearer abc.def.ghi',
        access_token: 'tok-123',
        client_secret: 'sec-456',
        nested: { url: presigned, headers: { authorization: 'Basic Zm9vOmJhcg==' } },
      },
      `fetching ${presigned}`,
    );
    log.error({ err: new Error(`upstream said ${presigned}`) }, 'failed');
    const text = lines();
    for (const secret of ['abc.def.ghi', 'tok-123', 'sec-456', 's3cr3tSig', 'AKIAXYZ', 'Zm9vOmJhcg==']) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    assert.match(text, /cxone-media\.s3\.amazonaws\.com\/rec\/abc\.wav/);
  });
});
