import assert from 'node:assert/strict';
import { test } from 'node:test';

import { hostAllowed, isLoopbackHost, urlSchemeProblem } from '../../src/url-policy.js';

test('loopback hosts', () => {
  for (const h of ['127.0.0.1', '127.9.9.9', '::1', '[::1]', 'localhost', 'LOCALHOST'])
    assert.ok(isLoopbackHost(h), h);
  for (const h of ['10.0.0.1', '128.0.0.1', 'example.com', 'localhost.example.com', '::2'])
    assert.ok(!isLoopbackHost(h), h);
});

test('https everywhere, http only on loopback', () => {
  assert.equal(urlSchemeProblem('https://example.com'), undefined);
  assert.equal(urlSchemeProblem('http://127.0.0.1:9000/x'), undefined);
  assert.match(urlSchemeProblem('http://example.com') ?? '', /plain http/);
  assert.match(urlSchemeProblem('ftp://example.com') ?? '', /scheme ftp:/);
  assert.match(urlSchemeProblem('not a url') ?? '', /not a URL/);
});

test('media host patterns', () => {
  const patterns = ['*.amazonaws.com', '127.0.0.1:8080'];
  assert.ok(hostAllowed('cxone-media-us-east-1.s3.amazonaws.com', patterns));
  assert.ok(hostAllowed('127.0.0.1', patterns));
  assert.ok(!hostAllowed('amazonaws.com', patterns));
  assert.ok(!hostAllowed('evil-amazonaws.com', patterns));
  assert.ok(!hostAllowed('amazonaws.com.evil.net', patterns));
  assert.ok(!hostAllowed('127.0.0.2', patterns));
});
