import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CxrecError } from '../../../src/errors.js';
import {
  downloadUrlSchema,
  parseWire,
  recordingDetailSchema,
  searchResponseSchema,
  tokenResponseSchema,
} from '../../../src/cxone/wire.js';

const recording = {
  recordingId: '3f0c6f1e-8a7b-4c1d-9e2f-0a1b2c3d4e5f',
  contactId: '584930211',
  status: 'Available',
  createdDate: '2024-01-15T10:31:07Z',
  durationSeconds: 312,
  direction: 'inbound',
  agentId: '12345',
  skillName: 'Billing',
};

function invalid(fn: () => unknown, field: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CxrecError);
    assert.equal(err.code, 'invalid_response');
    assert.equal(err.context.field, field);
    assert.match(err.message, new RegExp(field.replace('.', '\\.')));
    return true;
  });
}

describe('wire validation', () => {
  it('accepts the contract examples and drops unknown fields', () => {
    const page = parseWire(
      searchResponseSchema,
      { recordings: [{ ...recording, extra: 1 }], nextPageToken: 'eyJ' },
      'search',
    );
    assert.equal(page.recordings[0]?.recordingId, recording.recordingId);
    assert.doesNotMatch(JSON.stringify(page), /extra/);
    const last = parseWire(searchResponseSchema, { recordings: [], nextPageToken: null }, 'search');
    assert.equal(last.nextPageToken, null);
  });

  it('names the malformed field', () => {
    invalid(
      () => parseWire(searchResponseSchema, { recordings: [{ ...recording, status: 'Gone' }] }, 'search'),
      'recordings.0.status',
    );
    invalid(
      () =>
        parseWire(
          searchResponseSchema,
          { recordings: [{ ...recording, createdDate: 'yesterday' }] },
          'search',
        ),
      'recordings.0.createdDate',
    );
    invalid(() => parseWire(searchResponseSchema, { recording: [] }, 'search'), 'recordings');
    invalid(() => parseWire(searchResponseSchema, [], 'search'), '(body)');
    invalid(
      () => parseWire(tokenResponseSchema, { access_token: 'x', token_type: 'Bearer' }, 'token'),
      'expires_in',
    );
    invalid(
      () =>
        parseWire(tokenResponseSchema, { access_token: 'x', token_type: 'mac', expires_in: 3600 }, 'token'),
      'token_type',
    );
  });

  it('keeps known channels of a detail and tolerates an absent retention', () => {
    const detail = parseWire(
      recordingDetailSchema,
      { ...recording, availableChannels: ['combined', 'screen', 'agent'] },
      'detail',
    );
    assert.deepEqual(detail.availableChannels, ['combined', 'agent']);
    assert.equal(detail.retentionExpiresAt, undefined);
  });

  it('checks a download answer, without quoting the URL', () => {
    const ok = {
      url: 'https://cxone-media-us-east-1.s3.amazonaws.com/a.wav?AWSAccessKeyId=AK&Signature=SECRET&Expires=1',
      contentType: 'audio/wav',
      sizeBytes: 4821504,
      channel: 'combined',
    };
    assert.equal(parseWire(downloadUrlSchema, ok, 'download_url').sizeBytes, 4821504);
    invalid(() => parseWire(downloadUrlSchema, { ...ok, sizeBytes: -1 }, 'download_url'), 'sizeBytes');
    assert.throws(
      () => parseWire(downloadUrlSchema, { ...ok, url: 'not a url Signature=SECRET' }, 'download_url'),
      (err: unknown) =>
        err instanceof CxrecError && !err.message.includes('SECRET') && err.context.field === 'url',
    );
  });

  it('reads a token answer, scope optional', () => {
    const token = parseWire(
      tokenResponseSchema,
      { access_token: 'abc', token_type: 'bearer', expires_in: 3600 },
      'token',
    );
    assert.equal(token.scope, undefined);
  });
});
