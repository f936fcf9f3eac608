import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CxrecError } from '../../../src/errors.js';
import {
  backoffDelayMs,
  decideRetry,
  maxRetryAfterMs,
  parseRetryAfterMs,
  resolveRetryPolicy,
  retryAfterCapped,
  retryKind,
  type RetryCounts,
} from '../../../src/cxone/retry-policy.js';

const counts = (over: Partial<RetryCounts>): RetryCounts => ({
  fault: 0,
  rate_limited: 0,
  token: 0,
  ...over,
});

describe('backoffDelayMs', () => {
  it('grows exponentially from the base, with full jitter below the ceiling', () => {
    const top = { baseMs: 2000, capMs: 60_000, random: () => 0.999999 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, top)),
      [1999, 3999, 7999, 15_999, 31_999],
    );
    assert.equal(backoffDelayMs(3, { ...top, random: () => 0 }), 0);
    assert.equal(backoffDelayMs(3, { ...top, random: () => 0.5 }), 4000);
  });

  it('is capped, even for absurd attempt numbers', () => {
    const policy = { baseMs: 2000, capMs: 60_000, random: () => 0.999999 };
    assert.equal(backoffDelayMs(7, policy), 59_999);
    assert.equal(backoffDelayMs(10_000, policy), 59_999);
  });
});

describe('parseRetryAfterMs', () => {
  it('reads delta-seconds', () => {
    assert.equal(parseRetryAfterMs('3'), 3000);
    assert.equal(parseRetryAfterMs(' 1 '), 1000);
    assert.equal(parseRetryAfterMs(['2', '9']), 2000);
  });
  it('reads an HTTP-date relative to now', () => {
    const now = Date.parse('2024-01-15T10:00:00Z');
    assert.equal(parseRetryAfterMs('Mon, 15 Jan 2024 10:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfterMs('Mon, 15 Jan 2024 09:59:00 GMT', now), 0);
  });
  it('ignores garbage and absence', () => {
    assert.equal(parseRetryAfterMs(undefined), undefined);
    assert.equal(parseRetryAfterMs('soon'), undefined);
    assert.equal(parseRetryAfterMs('-1'), undefined);
  });
});

describe('decideRetry', () => {
  const policy = resolveRetryPolicy({ baseMs: 1000, capMs: 8000, maxAttempts: 3, random: () => 0.5 });
  const http503 = new CxrecError('http_status', 'search answered 503', { retryable: true });
  const http404 = new CxrecError('not_found', 'no such recording');
  const http400 = new CxrecError('http_status', 'search answered 400');
  const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

  it('retries 5xx, resets and timeouts with backoff, a bounded number of times', () => {
    assert.deepEqual(decideRetry(http503, counts({ fault: 1 }), policy), {
      retry: true,
      kind: 'fault',
      delayMs: 500,
    });
    assert.deepEqual(decideRetry(reset, counts({ fault: 2 }), policy), {
      retry: true,
      kind: 'fault',
      delayMs: 1000,
    });
    const timeout = Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    assert.equal(decideRetry(timeout, counts({ fault: 1 }), policy).retry, true);
    assert.deepEqual(decideRetry(http503, counts({ fault: 3 }), policy), { retry: false });
  });

  it('never retries other 4xx or unknown errors', () => {
    assert.deepEqual(decideRetry(http404, counts({ fault: 1 }), policy), { retry: false });
    assert.deepEqual(decideRetry(http400, counts({ fault: 1 }), policy), { retry: false });
    assert.deepEqual(decideRetry(new TypeError('bug'), counts({ fault: 1 }), policy), { retry: false });
    assert.deepEqual(decideRetry(new CxrecError('aborted', 'stop'), counts({ fault: 1 }), policy), {
      retry: false,
    });
  });

  it('lets Retry-After win over the computed backoff', () => {
    const limited = new CxrecError('rate_limited', '429', { retryAfterMs: 3000 });
    assert.deepEqual(decideRetry(limited, counts({ rate_limited: 1 }), policy), {
      retry: true,
      kind: 'rate_limited',
      delayMs: 3000,
    });
    const unavailable = new CxrecError('http_status', '503', { retryable: true, retryAfterMs: 20_000 });
    assert.deepEqual(decideRetry(unavailable, counts({ fault: 1 }), policy), {
      retry: true,
      kind: 'fault',
      delayMs: 20_000,
    });
  });

  it('waits at least a second on a 429 without Retry-After', () => {
    const limited = new CxrecError('rate_limited', '429');
    assert.deepEqual(decideRetry(limited, counts({ rate_limited: 1 }), policy), {
      retry: true,
      kind: 'rate_limited',
      delayMs: 1000,
    });
  });

  it('counts 429s apart from faults, with their own bound', () => {
    const limited = new CxrecError('rate_limited', '429', { retryAfterMs: 1000 });
    assert.equal(decideRetry(limited, counts({ rate_limited: 30, fault: 3 }), policy).retry, true);
    assert.equal(decideRetry(limited, counts({ rate_limited: 31 }), policy).retry, false);
  });

  it('replays a refused token at once, then backs off, then gives up', () => {
    const invalid = new CxrecError('token_invalid', 'token refused');
    assert.deepEqual(decideRetry(invalid, counts({ token: 1 }), policy), {
      retry: true,
      kind: 'token',
      delayMs: 0,
    });
    assert.deepEqual(decideRetry(invalid, counts({ token: 2 }), policy), {
      retry: true,
      kind: 'token',
      delayMs: 500,
    });
    assert.deepEqual(decideRetry(invalid, counts({ token: 7 }), policy), { retry: false });
  });

  it('classifies errors', () => {
    assert.equal(retryKind(new CxrecError('rate_limited', 'x')), 'rate_limited');
    assert.equal(retryKind(new CxrecError('token_invalid', 'x')), 'token');
    assert.equal(retryKind(new CxrecError('auth_failed', 'x')), undefined);
    assert.equal(retryKind(new CxrecError('scope_missing', 'x')), undefined);
  });

  it('rejects nonsense settings', () => {
    assert.throws(() => resolveRetryPolicy({ baseMs: 5000, capMs: 1000 }), { code: 'config_invalid' });
    assert.throws(() => resolveRetryPolicy({ maxAttempts: 0 }), { code: 'config_invalid' });
  });
});

describe('a Retry-After of days', () => {
  it('is capped at five minutes, and says so', () => {
    assert.equal(maxRetryAfterMs, 300_000);
    assert.equal(parseRetryAfterMs(String(3 * 86_400)), 300_000);
    assert.equal(retryAfterCapped(String(3 * 86_400)), true);
    const inAWeek = new Date(Date.parse('2026-01-01T00:00:00Z') + 7 * 86_400_000).toUTCString();
    assert.equal(parseRetryAfterMs(inAWeek, Date.parse('2026-01-01T00:00:00Z')), 300_000);
    assert.equal(parseRetryAfterMs('120'), 120_000);
    assert.equal(retryAfterCapped('120'), false);
    assert.equal(retryAfterCapped(undefined), false);
  });
});
