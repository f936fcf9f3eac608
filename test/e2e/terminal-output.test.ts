/**
 * What an operator sees on a terminal: `cxrec export` run under a real
 * pseudo-terminal (util-linux `script`), its output read back the way a
 * terminal shows it (`\r` and clear-line redraw in place). 300 recordings
 * with the light fault profile must fit in 40 lines at the default level:
 * one live progress line, problems only, the summary.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { screenLines } from '../helpers/terminal-screen.js';

const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** Single quotes for sh. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs `argv` on a pty of 160 columns; resolves with everything the terminal received. */
function onTerminal(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  const command = `stty cols 160 rows 40; exec ${argv.map(shQuote).join(' ')}`;
  const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('export on a terminal', () => {
  let sim: Simulator;
  let dir: string;

  before(async () => {
    sim = await startSimulator({
      recordings: 300,
      seed: 11,
      timeScale: 600,
      faults: 'light',
      rateLimit: { requests: 100_000, windowSeconds: 60 },
      media: { minBytes: 2048, maxBytes: 16 * 1024 },
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-tty-'));
  });
  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('300 recordings with light faults print at most 40 lines: a live progress line, no retries, no stacks', async () => {
    const since = (await sim.truth()).createdFrom;
    const { code, output } = await onTerminal(
      [process.execPath, '--import', 'tsx', cliPath, 'export', '--since', since],
      {
        CXONE_API_URL: sim.url,
        CXONE_CLIENT_ID: 'cxrec-demo',
        CXONE_CLIENT_SECRET: 'demo-secret',
        CXREC_STORAGE: join(dir, 'store'),
        CXREC_STATE: join(dir, 'state.db'),
        CXREC_RATE_LIMIT: '100000',
        CXREC_CONCURRENCY: '16',
        CXREC_POLL_SECONDS: '0.05',
        CXREC_BACKOFF_SECONDS: '0.02',
      },
    );
    const lines = screenLines(output);
    const shown = `\n--- ${lines.length} lines ---\n${lines.join('\n')}`;
    assert.equal(code, 0, shown);
    assert.ok(lines.length <= 40, `at most 40 lines on the terminal${shown}`);
    // The faults happened and were absorbed: counted, not printed.
    const injected = Object.values(sim.stats().faults).reduce((a, b) => a + b, 0);
    assert.ok(injected > 0, 'the light profile injected faults');
    const retried = /(\d+) transient faults? absorbed by retries/.exec(output);
    assert.ok(retried && Number(retried[1]) > 0, `the summary counts the retries${shown}`);
    assert.ok(
      lines.some((l) =>
        /^done 300\/300 settled · \d+ stored · .* · API \d+\/100000 per min · \d+ retr/.test(l),
      ),
      `the last progress line stays, with budget use and retries${shown}`,
    );
    for (const line of lines) {
      assert.doesNotMatch(line, /^\s+at /, `no stack trace${shown}`);
      assert.doesNotMatch(line, /retrying|trying again|deferred/, `no retry printed${shown}`);
      assert.doesNotMatch(
        line,
        /settled.*\d\d:\d\d:\d\d (INFO|WARN|ERROR)/,
        `no log line run into the progress line${shown}`,
      );
      assert.ok(line.length <= 160, `no line wider than the terminal${shown}`);
    }
    assert.match(output, /Export finished/);
  });
});
