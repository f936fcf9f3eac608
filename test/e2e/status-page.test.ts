/**
 * The status page in a real headless Chromium (Debian's `chromium`, driven
 * by puppeteer-core): `cxrec ui` over a SQLite ledger, the page loads with
 * no console error and draws its charts, its counts are those of `cxrec
 * status --json`, and a hostile id is found and shown as text.
 *
 * CXREC_SCREENSHOT=docs/status-page.png (`npm run screenshot`) also saves
 * the page as that PNG.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Database from 'better-sqlite3';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

import type { Channel, DiscoveredJob } from '../../src/state/ledger.js';
import { openSqliteLedger } from '../../src/state/sqlite.js';
import { runCli, startCli, type CliRun } from '../helpers/run-cli.js';

const chromium = '/usr/bin/chromium';
const hostile = `<img src=x onerror="window.__pwned=1">"'&amp;<script>window.__pwned=2</script>`;
const MINUTE = 60_000;

/** A ledger with every kind of row, stored ones spread over the last hour, and API grants in its log. */
async function seedLedger(path: string, now: number): Promise<void> {
  const ledger = await openSqliteLedger(path);
  const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + 'Z';
  const job = (id: string, ageMs: number, extra: Partial<DiscoveredJob> = {}): DiscoveredJob => ({
    recordingId: id,
    channel: 'combined',
    state: 'pending',
    nextRunAt: now + 1e9,
    meta: {
      recordingId: id,
      contactId: `contact-${id}`,
      status: 'Available',
      createdDate: iso(now - ageMs),
      durationSeconds: 95,
    },
    ...extra,
  });
  const toStore = Array.from({ length: 150 }, (_, i) =>
    job(`rec-${1000 + i}`, 2 * 3_600_000 + i, { nextRunAt: 0 }),
  );
  const toFail = ['rec-2001', 'rec-2002', 'rec-2003'].map((id) => job(id, 26 * 3_600_000, { nextRunAt: 0 }));
  await ledger.upsertDiscovered([
    ...toStore,
    ...toFail,
    job(hostile, 3 * MINUTE),
    job('rec-3001', 20 * MINUTE),
    job('rec-3002', 3 * 3_600_000),
    job('rec-3003', 2 * 86_400_000),
    job('rec-3004', 9 * 86_400_000, { state: 'waiting' }),
    job('rec-3005', 30 * MINUTE, { state: 'waiting' }),
    job('rec-4001', 86_400_000, {
      state: 'media_unavailable',
      reason: 'fell back to combined',
      channel: 'agent',
    }),
    job('rec-4002', 70 * 86_400_000, { state: 'out_of_retention', reason: 'older than 70 % of retention' }),
    job('rec-4003', 5 * 3_600_000, { state: 'failed_processing', reason: 'transcoding failed' }),
  ]);
  const claimed = await ledger.claim({ owner: 'seed', limit: 500, leaseMs: MINUTE, now });
  assert.equal(claimed.length, toStore.length + toFail.length);
  for (const [i, r] of toStore.entries()) {
    const key = { recordingId: r.recordingId, channel: 'combined' as Channel };
    // A few a minute, busier some minutes than others (as a run behind the rate limit looks).
    const storedAt = now - 58 * MINUTE + Math.floor(57 * MINUTE * Math.sqrt(i / 150)) + (i % 3) * 1000;
    assert.ok(
      await ledger.finish(key, 'seed', {
        state: 'stored',
        stored: {
          key: `recordings/${r.recordingId}_combined.wav`,
          sizeBytes: 480_000 + i * 1000,
          md5: 'd41d8cd98f00b204e9800998ecf8427e',
          sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          contentType: 'audio/wav',
          storedAt,
        },
      }),
    );
  }
  const reasons = [
    'gave up after 6 attempts: network',
    'gave up after 6 attempts: network',
    'media_host_refused',
  ];
  for (const [i, r] of toFail.entries()) {
    assert.ok(
      await ledger.finish({ recordingId: r.recordingId, channel: 'combined' }, 'seed', {
        state: 'failed',
        reason: reasons[i] ?? 'failed',
        errorCode: i === 2 ? 'media_host_refused' : 'network',
        errorMessage:
          i === 2
            ? 'media URL host evil.example.net is not allowed (https://evil.example.net/a.wav?X-Amz-Signature=0123abcd)'
            : 'read ECONNRESET',
      }),
    );
  }
  await ledger.close();
  const db = new Database(path);
  const grant = db.prepare('INSERT INTO rate_limit_log (acquired_at, done_at, budget) VALUES (?, ?, ?)');
  for (let i = 0; i < 31; i++) grant.run(now - 2000 - i * 100, now - 1000, 'api');
  for (let i = 0; i < 44; i++) grant.run(now - MINUTE - 2000 - i * 100, now - MINUTE, 'api');
  db.close();
}

/** Evaluates `expression` in the page (a string: the tests are compiled without the DOM's types). */
async function inPage<T>(page: Page, expression: string): Promise<T> {
  return (await page.evaluate(expression)) as T;
}

const text = (page: Page, selector: string): Promise<string> =>
  inPage<string>(page, `document.querySelector(${JSON.stringify(selector)})?.textContent ?? ''`);

const idCells = (page: Page): Promise<string[]> =>
  inPage<string[]>(page, `[...document.querySelectorAll('#search-results td.id')].map((e) => e.textContent)`);

/** Starts `cxrec ui --port 0` and resolves to the page's URL it prints. */
async function startUi(env: NodeJS.ProcessEnv): Promise<{ run: CliRun; url: string }> {
  const run = startCli(['ui', '--port', '0'], env);
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    run.child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /status page is at (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    void run.done.then((r) => reject(new Error(`cxrec ui ended early (${r.code}): ${r.stderr}`)));
  });
  return { run, url };
}

describe('the status page in headless Chromium', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let ui: { run: CliRun; url: string } | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    assert.ok(
      existsSync(chromium),
      `${chromium} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does it)`,
    );
    dir = await mkdtemp(join(tmpdir(), 'cxrec-page-'));
    const state = join(dir, 'cxrec-state.db');
    await seedLedger(state, Date.now());
    env = { CXREC_STATE: state, CXREC_HTTP_HOST: '127.0.0.1', CXREC_LOG_LEVEL: 'warn' };
    ui = await startUi(env);
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${join(dir, 'chromium-profile')}`,
      ],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warn')
        problems.push(`console ${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
    });
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
  });

  after(async () => {
    await browser?.close();
    if (ui) {
      ui.run.child.kill('SIGTERM');
      const end = await ui.run.done;
      assert.equal(end.code, 0, `cxrec ui stops cleanly on SIGTERM: ${end.stderr}`);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('loads with no console error and draws both charts with uPlot served by cxrec', async () => {
    assert.ok(ui);
    await page.goto(ui.url, { waitUntil: 'load' });
    await page.waitForSelector('#chart-stored canvas');
    await page.waitForSelector('#chart-budget canvas');
    assert.deepEqual(problems, []);
    const scripts = await inPage<string[]>(
      page,
      `[...document.querySelectorAll('script[src]')].map((e) => e.getAttribute('src'))`,
    );
    assert.deepEqual(scripts, ['/assets/uPlot.iife.min.js', '/assets/status-charts.js']);
    const shot = process.env.CXREC_SCREENSHOT;
    if (shot) await page.screenshot({ path: shot, fullPage: true });
  });

  test('its counts are those of `cxrec status --json` over the same ledger', async () => {
    const status = await runCli(['status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const expected = JSON.parse(status.stdout) as { byState: Record<string, number>; backlog: number };
    const shown = await inPage<Record<string, number>>(
      page,
      `Object.fromEntries([...document.querySelectorAll('td[data-state]')].map((e) => [e.dataset.state, Number(e.textContent)]))`,
    );
    const nonZero = Object.fromEntries(Object.entries(shown).filter(([, n]) => n !== 0));
    assert.deepEqual(nonZero, expected.byState);
    assert.equal(Number(await text(page, '#backlog')), expected.backlog);
    assert.equal(expected.byState.stored, 150);
  });

  test('search finds a hostile id and shows it as text, never as markup', async () => {
    await page.type('#q', hostile);
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.click('form[role=search] button'),
    ]);
    assert.deepEqual(await idCells(page), [hostile]);
    assert.equal(
      await inPage<number>(
        page,
        `document.querySelectorAll('#search-results img, #search-results script').length`,
      ),
      0,
    );
    assert.equal(await inPage<unknown>(page, 'window.__pwned'), undefined);
    assert.equal(await inPage<string>(page, `document.querySelector('#q').value`), hostile);
    // By contact id too, and a miss says so.
    await page.goto(`${ui?.url}?q=contact-rec-3001`, { waitUntil: 'load' });
    assert.deepEqual(await idCells(page), ['rec-3001']);
    await page.goto(`${ui?.url}?q=nothing-here`, { waitUntil: 'load' });
    assert.match(await text(page, '#search'), /no row with the recording or contact id nothing-here/);
    assert.deepEqual(problems, []);
  });

  test('the failures are listed with their reasons, signatures scrubbed', async () => {
    await page.goto(ui?.url ?? '', { waitUntil: 'load' });
    const failures = await text(page, '#failures');
    assert.match(failures, /rec-2003.*media_host_refused/s);
    assert.match(failures, /gave up after 6 attempts: network/);
    assert.ok(!failures.includes('0123abcd'));
    const html = await page.content();
    assert.ok(!html.includes('0123abcd'));
  });
});
