import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';

import { CxrecError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { redactUrlPassword, safeUrl, scrubText } from '../../src/redact.js';

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

  test('every form of a database password pg honours is hidden, the server and database kept', () => {
    const forms: [string, string[]][] = [
      ['postgres://cxrec:pw-A1@db.example:5432/ledger', ['pw-A1']],
      ['postgresql://cxrec:p%40ss%2Fw-A2@db.example/ledger', ['p%40ss%2Fw-A2', 'ss%2Fw']],
      ['postgres://cxrec:pw/with@at-A3@db.example/ledger', ['pw/with', 'at-A3']],
      ['postgres://cxrec:pw with space-A4@db.example/ledger', ['pw', 'space-A4']],
      ['postgres://cx@corp:pw-A5@db.example/ledger', ['pw-A5']],
      ['postgres://cxrec@db.example/ledger?password=pw-B1', ['pw-B1']],
      ['postgres://cxrec@db.example/ledger?sslmode=require&sslpassword=pw-B2&x=1', ['pw-B2']],
      ['postgres://cxrec@db.example/ledger?pass%77ord=pw-B3', ['pw-B3']],
      ['postgres://cxrec@db.example/ledger?%73sl%70assword=pw-B4', ['pw-B4']],
      ['postgres://cxrec@db.example/ledger?password=pw%20with space-B5#frag', ['pw%20with', 'space-B5']],
      ['postgres://cxrec@db.example/ledger?PASSWORD=pw-B6', ['pw-B6']],
    ];
    for (const [url, secrets] of forms) {
      for (const shown of [redactUrlPassword(url), scrubText(`cannot open ${url}: refused`)]) {
        for (const secret of secrets) assert.ok(!shown.includes(secret), `${secret} leaked: ${shown}`);
        assert.match(shown, /db\.example/);
        assert.match(shown, /ledger/);
      }
    }
    assert.equal(
      redactUrlPassword('postgres://cxrec@db.example/ledger?sslmode=require&password=pw&application_name=x'),
      'postgres://cxrec@db.example/ledger?sslmode=require&password=[REDACTED]&application_name=x',
    );
    assert.equal(
      redactUrlPassword('postgres://cxrec:pw@db.example/ledger'),
      'postgres://cxrec@db.example/ledger',
    );
    assert.equal(
      redactUrlPassword('postgres://db.example:5432/ledger?sslmode=require'),
      'postgres://db.example:5432/ledger?sslmode=require',
    );
  });
});
