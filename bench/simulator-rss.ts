/**
 * Proves the simulator streams a 2 GiB object without holding it: starts
 * the simulator in a child process, downloads the object through a client
 * that only hashes and discards, and reads the child's peak RSS (VmHWM)
 * from /proc. The md5 must equal the truth; peak RSS must stay under 150 MB.
 *
 *     node --import tsx bench/simulator-rss.ts
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { request } from 'undici';

import type { Simulator } from '../src/simulator/index.js';

const size = 2 * 1024 ** 3;
const targetBytes = 150 * 1024 * 1024;

interface Ready {
  url: string;
}

/** Child side: run a simulator holding one 2 GiB recording until told to stop. */
async function child(): Promise<void> {
  const { startSimulator } = await import('../src/simulator/index.js');
  const sim: Simulator = await startSimulator({
    recordings: 0,
    rateLimit: false,
    extraRecordings: [{ id: 'huge', channels: { combined: { sizeBytes: size, etag: 'multipart' } } }],
  });
  process.send?.({ url: sim.url } satisfies Ready);
  process.once('message', () => {
    void sim.stop().then(() => process.exit(0));
  });
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const proc = fork(fileURLToPath(import.meta.url), ['--child'], {
    execArgv: ['--import', 'tsx'],
    stdio: 'inherit',
  });
  const ready = await new Promise<Ready>((resolve) => proc.once('message', (m) => resolve(m as Ready)));
  const pid = proc.pid ?? 0;
  const baselineKb = statusKb(pid, 'VmRSS');
  let sampledPeakKb = baselineKb;
  const sampler = setInterval(() => (sampledPeakKb = Math.max(sampledPeakKb, statusKb(pid, 'VmRSS'))), 100);
  try {
    const started = Date.now();
    const token = await request(`${ready.url}/api/v2/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=cxrec-demo&client_secret=demo-secret',
    });
    const { access_token } = (await token.body.json()) as { access_token: string };
    const dl = await request(`${ready.url}/api/v2/recording/huge/download?channel=combined`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    const { url } = (await dl.body.json()) as { url: string };
    const md5 = createHash('md5');
    let received = 0;
    const media = await request(url);
    for await (const chunk of media.body) {
      md5.update(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
    const streamSeconds = (Date.now() - started) / 1000;
    const streamPeakKb = statusKb(pid, 'VmHWM');
    // The truth hashes the object too (streaming, in the child); that also must not grow memory.
    const truth = (await (await request(`${ready.url}/__truth`)).body.json()) as {
      recordings: { channels: { channel: string; md5: string }[] }[];
    };
    const expected = truth.recordings[0]?.channels.find((c) => c.channel === 'combined')?.md5;
    const finalPeakKb = statusKb(pid, 'VmHWM');
    const got = md5.digest('hex');
    const peakMb = Math.max(finalPeakKb, sampledPeakKb) / 1024;
    console.log(
      JSON.stringify(
        {
          bytes: received,
          streamSeconds: Number(streamSeconds.toFixed(1)),
          md5: got,
          md5MatchesTruth: got === expected,
          baselineRssMb: Number((baselineKb / 1024).toFixed(1)),
          peakRssDuringStreamMb: Number((streamPeakKb / 1024).toFixed(1)),
          peakRssIncludingTruthHashMb: Number(peakMb.toFixed(1)),
          targetMb: targetBytes / 1024 / 1024,
        },
        null,
        2,
      ),
    );
    if (received !== size || got !== expected || peakMb * 1024 * 1024 >= targetBytes) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    proc.send('stop');
  }
}

if (process.argv.includes('--child')) await child();
else await main();
