import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';

import { CallPace, formatLine, progressDisplay } from '../../src/cli/progress-display.js';
import { formatSummary } from '../../src/cli/export.js';
import type { ExportProgress } from '../../src/pipeline/export-job.js';
import { groupReasons, reasonGroup } from '../../src/reason-groups.js';
import { formatLogLine, StatusLine } from '../../src/terminal.js';

function sink(): { stream: Writable & { columns?: number }; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

const progress: ExportProgress = {
  phase: 'downloading',
  total: 300,
  done: 100,
  stored: 90,
  waiting: 4,
  downloading: 8,
  bytes: 50_000_000,
  elapsedMs: 10_000,
};

describe('terminal log lines', () => {
  const err = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  const record = {
    level: 40,
    time: Date.UTC(2026, 0, 1, 8),
    msg: 'recording failed',
    recordingId: 'r 1',
    err: { type: 'Error', message: err.message, stack: err.stack, code: err.code },
  };

  test('one line: level, message, fields, the error as code and message, no stack', () => {
    const line = formatLogLine(record, { stacks: false, colour: false });
    assert.equal(line.split('\n').length, 2, line);
    assert.match(line, /WARN {2}recording failed recordingId="r 1" error="ECONNRESET: socket hang up"\n$/);
    assert.doesNotMatch(line, /at /);
  });

  test('the stack only when asked (debug)', () => {
    const line = formatLogLine(record, { stacks: true, colour: false });
    assert.match(line, /\n {4}Error: socket hang up\n {8}at /);
  });

  test('a log line clears the status line and redraws it after', () => {
    const { stream, text } = sink();
    stream.columns = 30;
    const status = new StatusLine(stream);
    status.set('downloading 1/3 settled · a long tail that does not fit');
    status.print('08:00:00 WARN  something\n');
    status.end();
    assert.equal(
      text(),
      '\r\x1b[2Kdownloading 1/3 settled · a …' +
        '\r\x1b[2K08:00:00 WARN  something\ndownloading 1/3 settled · a …' +
        '\n',
    );
  });
});

describe('progress', () => {
  test('the line shows settled/total, stored, MB, MB/s, ETA, waiting, budget use and retries', () => {
    assert.equal(
      formatLine({ ...progress, retries: 7, apiCallsLastMinute: 38, apiLimitPerMinute: 50 }),
      'downloading 100/300 settled · 90 stored · 50.0 MB · 5.0 MB/s · ETA 20s · 4 waiting for processing · API 38/50 per min · 7 retries',
    );
  });

  test('API calls of the last minute, from a running total', () => {
    const pace = new CallPace();
    assert.equal(pace.sample(0, 5), 5);
    assert.equal(pace.sample(30_000, 20), 20);
    assert.equal(pace.sample(61_000, 30), 25);
    assert.equal(pace.sample(95_000, 31), 11);
  });

  test('off a terminal: a JSON line at most every interval, with retries and budget use', () => {
    const { stream, text } = sink();
    let now = 0;
    const display = progressDisplay({
      stream,
      intervalMs: 10_000,
      now: () => now,
      extras: () => ({ retries: 3, apiCalls: 12, apiLimitPerMinute: 50 }),
    });
    display.update(progress);
    now = 5000;
    display.update(progress);
    now = 10_000;
    display.update(progress);
    const lines = text().trim().split('\n');
    assert.equal(lines.length, 2);
    const p = (JSON.parse(lines[0]!) as { progress: Record<string, unknown> }).progress;
    assert.equal(p.retries, 3);
    assert.equal(p.apiCallsLastMinute, 12);
    assert.equal(p.apiLimitPerMinute, 50);
  });
});

describe('reason groups', () => {
  test('per-row details are one group', () => {
    assert.equal(
      reasonGroup('no audio: channel never captured or empty media (44 bytes)'),
      reasonGroup('no audio: channel never captured or empty media (10 bytes)'),
    );
    assert.equal(
      reasonGroup('gave up after 6 attempts: server_error'),
      'gave up after 6 attempts: server_error',
    );
    assert.equal(
      reasonGroup('media host "evil.example" for 0f8fad5b-d9cb-469f-a165-70867728950e refused'),
      'media host "…" for … refused',
    );
    assert.deepEqual(groupReasons({ 'x (1 bytes)': 1, 'x (2 bytes)': 2, y: 1 }), { 'x (N bytes)': 3, y: 1 });
  });

  test('the summary prints one row per group and the retries', () => {
    const text = formatSummary(
      {
        byState: {
          media_unavailable: { 'no audio (44 bytes)': 2, 'no audio (10 bytes)': 1 },
          stored: { downloaded: 5 },
        },
        unsettled: 0,
        total: 8,
        bytesDownloaded: 1000,
        listings: 2,
        elapsedMs: 1000,
        interrupted: false,
      },
      10,
      { api: 4, media: 1 },
    );
    assert.match(text, /media_unavailable +no audio \(N bytes\) +3\n/);
    assert.match(text, /5 transient faults absorbed by retries \(api 4, media 1\)/);
  });
});
