import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { CxrecError } from '../../../src/errors.js';
import {
  extensionFor,
  layoutFolder,
  objectKeyProblem,
  recordingKeyPart,
  recordingObjectKey,
  sidecarKeyBeside,
  sidecarObjectKey,
} from '../../../src/storage/keys.js';

const hashed = (id: string): string =>
  `id-${createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 32)}`;

describe('recordingKeyPart', () => {
  it('keeps ids that are safe everywhere', () => {
    for (const id of ['12345', 'abc-DEF_9', 'a.b', '_x', '-x', 'CON', 'x'.repeat(128)]) {
      assert.equal(recordingKeyPart(id), id);
    }
  });

  it('hashes hostile or awkward ids', () => {
    const hostile = [
      '../x',
      'a/b',
      'a\\b',
      'with space',
      'ünïcode',
      '录音',
      '.hidden',
      '..',
      'a..b',
      'x'.repeat(129),
      'x'.repeat(200),
      '',
      'nul\u0000byte',
      'tab\tid',
      '/etc/passwd',
    ];
    for (const id of hostile) {
      const key = recordingKeyPart(id);
      assert.equal(key, hashed(id), JSON.stringify(id));
      assert.match(key, /^id-[0-9a-f]{32}$/);
    }
  });

  it('gives different ids different keys', () => {
    assert.notEqual(recordingKeyPart('a/b'), recordingKeyPart('a\\b'));
  });
});

describe('extensionFor', () => {
  it('maps the three media types and their aliases', () => {
    assert.equal(extensionFor('audio/wav'), 'wav');
    assert.equal(extensionFor('Audio/WAV; codecs=1'), 'wav');
    assert.equal(extensionFor('audio/x-wav'), 'wav');
    assert.equal(extensionFor('audio/mpeg'), 'mp3');
    assert.equal(extensionFor('audio/mp4'), 'mp4');
  });

  it('refuses anything else', () => {
    for (const type of ['video/mp4', 'application/octet-stream', '', 'audio/ogg']) {
      assert.throws(() => extensionFor(type), CxrecError, type);
    }
  });
});

describe('object keys', () => {
  it('follows the contract layout', () => {
    assert.equal(recordingObjectKey('123', 'combined', 'audio/wav'), 'recordings/123_combined.wav');
    assert.equal(recordingObjectKey('a/b', 'agent', 'audio/mpeg'), `recordings/${hashed('a/b')}_agent.mp3`);
    assert.equal(sidecarObjectKey('../x'), `metadata/${hashed('../x')}.json`);
  });

  it('every generated key passes objectKeyProblem', () => {
    for (const id of ['123', '../x', '..', '', 'CON', '.hidden', 'x'.repeat(200)]) {
      assert.equal(objectKeyProblem(recordingObjectKey(id, 'caller', 'audio/wav')), undefined);
      assert.equal(objectKeyProblem(sidecarObjectKey(id)), undefined);
    }
  });

  it('objectKeyProblem refuses keys that could leave the root', () => {
    const refused = [
      '',
      '/abs',
      '../x',
      'a/../b',
      'a/./b',
      'a//b',
      'a/',
      '..',
      'a\\..\\b',
      'nul\u0000',
      'line\nbreak',
      '.partial/x',
      'x'.repeat(1025),
      `a/${'y'.repeat(256)}`,
    ];
    for (const key of refused) assert.notEqual(objectKeyProblem(key), undefined, JSON.stringify(key));
    for (const key of ['recordings/a_combined.wav', 'metadata/x.json', '.hidden/ok', 'a/.partial/b']) {
      assert.equal(objectKeyProblem(key), undefined, key);
    }
  });
});

describe('CXREC_LAYOUT folders', () => {
  it('flat has none; date is the UTC day of the start', () => {
    assert.equal(layoutFolder('flat', '2026-03-04T23:59:59Z'), '');
    assert.equal(layoutFolder('date', '2026-03-04T23:59:59Z'), '2026/03/04/');
    assert.equal(layoutFolder('date', '2026-03-04T23:59:59.000Z'), '2026/03/04/');
    // An offset is turned to UTC first: 01:30+02:00 is the day before in UTC.
    assert.equal(layoutFolder('date', '2026-01-01T01:30:00+02:00'), '2025/12/31/');
    assert.equal(
      recordingObjectKey('123', 'combined', 'audio/wav', layoutFolder('date', '2026-03-04T10:00:00Z')),
      'recordings/2026/03/04/123_combined.wav',
    );
    assert.equal(sidecarObjectKey('../x', '2026/03/04/'), `metadata/2026/03/04/${hashed('../x')}.json`);
    assert.equal(
      objectKeyProblem(recordingObjectKey('../x', 'agent', 'audio/mp4', '2026/03/04/')),
      undefined,
    );
  });

  it('a start that is no date is an invalid response, named', () => {
    for (const bad of ['', 'yesterday', '+275760-09-13T00:00:00Z']) {
      assert.throws(
        () => layoutFolder('date', bad),
        (err: unknown) =>
          err instanceof CxrecError &&
          err.code === 'invalid_response' &&
          /CXREC_LAYOUT=date/.test(err.message),
        JSON.stringify(bad),
      );
    }
  });

  it('the sidecar lies beside its object, whatever the layout', () => {
    assert.equal(sidecarKeyBeside('recordings/123_combined.wav'), 'metadata/123.json');
    assert.equal(sidecarKeyBeside('recordings/2026/03/04/a_b_c_agent.mp4'), 'metadata/2026/03/04/a_b_c.json');
    assert.equal(
      sidecarKeyBeside(`recordings/${hashed('x y')}_caller.mp3`),
      `metadata/${hashed('x y')}.json`,
    );
    for (const odd of [
      'metadata/x.json',
      'recordings/x.wav',
      'recordings/x_video.wav',
      'elsewhere/x_combined.wav',
    ]) {
      assert.equal(sidecarKeyBeside(odd), undefined, odd);
    }
  });
});
