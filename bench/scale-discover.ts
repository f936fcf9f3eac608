/**
 * Child process of bench/scale.bench.ts: discovery of one 200 000-recording
 * window into an existing ledger (CXREC_STATE), its peak RSS read by the
 * parent (/usr/bin/time). The listing is synthetic, pages of 100 as the
 * recording API serves them (the simulator cannot serve 200 000 recordings
 * in a bench's minutes); what is measured is discovery's side: paging,
 * classifying, upserting. Prints `{ listed, inserted, seconds }`.
 *
 *     node --import tsx bench/scale-discover.ts STATE [COUNT]
 */
import { setImmediate } from 'node:timers/promises';

import { pino } from 'pino';

import { discoverWindow } from '../src/pipeline/discover.js';
import type { ListedPage, ListWindow, RecordingSource } from '../src/pipeline/recording-source.js';
import { parseStateTarget } from '../src/config.js';
import type { DiscoveredJob } from '../src/state/ledger.js';
import { openLedger } from '../src/state/open-state.js';

const [target = '', countArg = '200000'] = process.argv.slice(2);
const count = Number(countArg);
const pageSize = 100;
// After the synthesized ledger's 1 000 000 rows (10 s apart from 2024-01-01).
const base = Date.UTC(2024, 6, 1);

async function* pages(): AsyncIterable<ListedPage> {
  const now = Date.now();
  for (let start = 0; start < count; start += pageSize) {
    const jobs: DiscoveredJob[] = [];
    for (let i = start; i < Math.min(count, start + pageSize); i++) {
      const recordingId = `window-${String(i).padStart(7, '0')}`;
      const processing = i % 20 === 0;
      jobs.push({
        recordingId,
        channel: 'combined',
        state: processing ? 'waiting' : 'pending',
        nextRunAt: processing ? now + 30_000 : now,
        meta: {
          recordingId,
          contactId: `contact-${i}`,
          status: processing ? 'Processing' : 'Available',
          createdDate: new Date(base + i * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          durationSeconds: 30 + (i % 600),
          direction: i % 2 ? 'Inbound' : 'Outbound',
          agentId: `agent-${i % 50}`,
          skillName: 'Support',
        },
      });
    }
    // A page arrives over the network: other work runs in between.
    await setImmediate();
    yield { jobs, listed: jobs.length, byStatus: { Available: jobs.length } };
  }
}

const source: RecordingSource = {
  dialect: 'recording-api',
  pageSize,
  listWindow: (_window: ListWindow) => pages(),
  recheckWaiting: () => Promise.reject(new Error('not used')),
  preflight: () => Promise.reject(new Error('not used')),
  mediaLink: () => Promise.reject(new Error('not used')),
  mediaMissing: () => Promise.reject(new Error('not used')),
};

const ledger = await openLedger(parseStateTarget(target));
try {
  const started = performance.now();
  const window = { from: new Date(base).toISOString(), to: new Date(base + count * 1000).toISOString() };
  const result = await discoverWindow(
    { source, ledger, log: pino({ level: 'silent' }), now: () => Date.now() },
    window,
    new AbortController().signal,
  );
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ listed: result.listed, inserted: result.inserted, seconds })}\n`);
} finally {
  await ledger.close();
}
