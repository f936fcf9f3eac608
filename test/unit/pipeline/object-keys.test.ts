import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { objectKeys } from '../../../src/pipeline/download.js';
import { encodeUploadRef } from '../../../src/pipeline/upload-ref.js';

const job = {
  recordingId: 'r1',
  channel: 'combined' as const,
  meta: { recordingId: 'r1', status: 'Available', createdDate: '2026-03-04T10:00:00Z' },
  uploadToken: null,
};
const flat = 'recordings/r1_combined.wav';
const dated = 'recordings/2026/03/04/r1_combined.wav';

describe('objectKeys: where a row goes, and where it may already be', () => {
  test("CXREC_LAYOUT picks the key; the other layout's key is looked at too", () => {
    assert.deepEqual(objectKeys(job, 'audio/wav', 'flat'), { key: flat, others: [dated] });
    assert.deepEqual(objectKeys(job, 'audio/wav', 'date'), { key: dated, others: [flat] });
  });

  test('the key of an upload staged under another layout wins, so it resumes', () => {
    const staged = { ...job, uploadToken: encodeUploadRef({ key: flat, token: 'abc' }) };
    assert.deepEqual(objectKeys(staged, 'audio/wav', 'date'), { key: flat, others: [dated] });
  });

  test('a staged key that is not one of the row keys is ignored', () => {
    for (const key of ['recordings/r1_combined.mp3', 'recordings/other_combined.wav']) {
      const staged = { ...job, uploadToken: encodeUploadRef({ key, token: 'abc' }) };
      assert.deepEqual(objectKeys(staged, 'audio/wav', 'date'), { key: dated, others: [flat] });
    }
  });

  test('with flat, a start no date can be made of still has its flat key', () => {
    const odd = { ...job, meta: { ...job.meta, createdDate: 'not a date' } };
    assert.deepEqual(objectKeys(odd, 'audio/wav', 'flat'), { key: flat, others: [] });
    assert.throws(() => objectKeys(odd, 'audio/wav', 'date'), /CXREC_LAYOUT=date/);
  });
});
