import assert from 'node:assert/strict';
import { test } from 'node:test';

import { exportFailedNotification, exportNotification } from '../../src/cli/export.js';
import { CxrecError } from '../../src/errors.js';
import { FailureNotices, notifyTarget, type Notification, type Notifier } from '../../src/notify.js';

function capture(): Notifier & { sent: Notification[] } {
  const sent: Notification[] = [];
  return { sent, send: (n) => sent.push(n), settle: () => Promise.resolve() };
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('run: failures are batched, and a second batch waits for the minimum interval', async () => {
  const notifier = capture();
  let now = 0;
  const notices = new FailureNotices(notifier, { gatherMs: 20, minIntervalMs: 60_000, now: () => now });
  notices.failed({ recordingId: 'a', channel: 'combined' }, 'gave up after 6 attempts: server_error');
  notices.failed({ recordingId: 'b', channel: 'combined' }, 'gave up after 6 attempts: server_error');
  notices.failed({ recordingId: 'c', channel: 'agent' }, 'no audio (44 bytes)');
  await wait(60);
  assert.equal(notifier.sent.length, 1);
  const first = notifier.sent[0]!;
  assert.equal(first.event, 'recordings_failed');
  assert.equal(first.failed, 3);
  assert.deepEqual(first.reasons, {
    'gave up after 6 attempts: server_error': 2,
    'no audio (N bytes)': 1,
  });
  assert.match(first.text, /3 recordings ended failed: gave up after 6 attempts: server_error \(2\)/);

  now = 1000;
  notices.failed({ recordingId: 'd', channel: 'combined' }, 'x');
  await wait(60);
  assert.equal(notifier.sent.length, 1, 'not within a minute of the last one');
  notices.stop();
  assert.equal(notifier.sent.length, 2, 'what is gathered goes out at shutdown');
  assert.equal(notifier.sent[1]!.failed, 1);
});

test('the export notification: text for a person, fields for a program; an error stop says why', () => {
  const n = exportNotification(
    { since: '2026-01-01T00:00:00.000Z', until: '2026-01-02T00:00:00.000Z' },
    {
      byState: { stored: { downloaded: 9 }, failed: { 'gave up after 6 attempts: server_error': 1 } },
      unsettled: 0,
      total: 10,
      bytesDownloaded: 2_000_000,
      listings: 2,
      elapsedMs: 65_000,
      interrupted: false,
    },
    1,
    30,
  );
  assert.match(
    n.text,
    /^cxrec export 2026-01-01T00:00:00.000Z – 2026-01-02T00:00:00.000Z on .* finished: 9 stored, 1 failed \(2.0 MB in 1m05s\); exit 1$/,
  );
  assert.deepEqual(n.counts, { stored: 9, failed: 1 });
  assert.equal(n.exitCode, 1);
  assert.equal(n.durationSeconds, 65);

  const f = exportFailedNotification(
    { since: 'a', until: 'b' },
    new CxrecError('auth_failed', 'CXone refused the credentials of CXONE_CLIENT_ID x'),
    1000,
  );
  assert.equal(f.exitCode, 3);
  assert.match(f.text, /stopped: CXone refused the credentials .*; exit 3$/);
});

test('only the scheme and host of the URL are ever shown', () => {
  assert.equal(notifyTarget('https://hooks.slack.com/services/T0/B0/XYZ?x=1'), 'https://hooks.slack.com');
});
