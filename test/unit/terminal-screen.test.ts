import assert from 'node:assert/strict';
import { test } from 'node:test';

import { screenLines } from '../helpers/terminal-screen.js';

test('screenLines interprets \\r, clear-line and colours the way a terminal does', () => {
  const out =
    'progress 1/3\r\x1b[2Kprogress 2/3' +
    '\r\x1b[2K08:00:00 \x1b[33mWARN \x1b[0m recording failed\r\nprogress 2/3' +
    '\r\x1b[2Kprogress 3/3\n' +
    'summary\r\n';
  assert.deepEqual(screenLines(out), ['08:00:00 WARN  recording failed', 'progress 3/3', 'summary']);
  // Overwritten without a clear: the longer old tail stays visible.
  assert.deepEqual(screenLines('abcdef\rxy\n'), ['xycdef']);
});
