/**
 * The export pipeline's figures (issue 4):
 * - API calls per stored recording on a clean 1 000-recording combined export (≤ 1.05);
 * - download throughput of 12 × 64 MB at concurrency 4 with no rate limit,
 *   against `curl | tee >(md5sum) | sha256sum > file` on the same objects at
 *   the same concurrency, in the same run (≥ 1.0×), with plain `curl -o`
 *   as the ceiling;
 * - peak RSS of the exporter while it exports one 2 GB recording (≤ 200 MB).
 * Each figure runs against a freshly started simulator and the real CLI.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { request } from 'undici';

import { startSimulator, type Simulator } from '../src/simulator/index.js';
import { startCli } from '../test/helpers/run-cli.js';
import type { Benchmark, BenchResult } from './types.js';

const quick = process.env.BENCH_QUICK === '1';
const exec = promisify(execFile);
const cleanMix = {
  stillProcessing: 0,
  failed: 0,
  purged: 0,
  neverCaptured: 0,
  lateIndexed: 0,
  hostileIds: 0,
};
const MB = 1_000_000;

function envFor(sim: Simulator, dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    CXONE_API_URL: sim.url,
    CXONE_CLIENT_ID: 'cxrec-demo',
    CXONE_CLIENT_SECRET: 'demo-secret',
    CXREC_STORAGE: join(dir, 'store'),
    CXREC_STATE: join(dir, 'state.db'),
    CXREC_LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Runs `cxrec export` to completion, sampling the process's peak RSS (VmHWM). */
async function exportOnce(
  sim: Simulator,
  dir: string,
  extra: Record<string, string>,
): Promise<{ seconds: number; peakRssBytes: number; code: number | null }> {
  const since = (await sim.truth()).createdFrom;
  const started = performance.now();
  const run = startCli(['export', '--since', since], envFor(sim, dir, extra), { built: true });
  let peak = 0;
  const sample = async (): Promise<void> => {
    try {
      const status = await readFile(`/proc/${run.child.pid ?? 0}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb * 1024);
    } catch {
      // The process has exited.
    }
  };
  const timer = setInterval(() => void sample(), 100);
  const res = await run.done;
  clearInterval(timer);
  if (res.code !== 0) throw new Error(`export exited ${res.code}: ${res.stderr.slice(-500)}`);
  return { seconds: (performance.now() - started) / 1000, peakRssBytes: peak, code: res.code };
}

async function apiCallsPerRecording(): Promise<BenchResult> {
  const recordings = quick ? 200 : 1000;
  const sim = await startSimulator({
    recordings,
    seed: 5,
    mix: cleanMix,
    media: { minBytes: 2048, maxBytes: 16 * 1024 },
    rateLimit: { requests: 6000, windowSeconds: 60 },
  });
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-calls-'));
  try {
    await exportOnce(sim, dir, { CXREC_RATE_LIMIT: '6000' });
    const stats = sim.stats();
    const calls =
      stats.calls.token.total +
      stats.calls.search.total +
      stats.calls.detail.total +
      stats.calls.download.total;
    const perRecording = calls / recordings;
    return {
      figure: `API calls per stored recording (${recordings}, combined, clean)`,
      target: '≤ 1.05',
      measured: perRecording.toFixed(3),
      pass: perRecording <= 1.05,
      details: { calls, recordings, byEndpoint: stats.calls },
    };
  } finally {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The standard-tools pipeline: each object through curl, hashed by md5sum
 * and sha256sum, into a file. Timed from asking for the download URLs, as
 * the export's time runs from its start: both do the same work (a token, a
 * URL per object, the transfers, the hashes, the files).
 */
async function curlPipeline(
  sim: Simulator,
  ids: readonly string[],
  dir: string,
  hash: boolean,
): Promise<number> {
  const started = performance.now();
  const urls = await presignedUrls(sim, ids);
  const script = hash
    ? 'curl -sf "$1" | tee >(md5sum > "$2.md5") | tee >(sha256sum > "$2.sha256") > "$2"'
    : 'curl -sf -o "$2" "$1"';
  const queue = urls.map((u, i) => [u, join(dir, `obj-${i}`)] as const);
  async function worker(): Promise<void> {
    for (let item = queue.shift(); item; item = queue.shift()) {
      await exec('bash', ['-c', `set -o pipefail; ${script}; wait`, 'curl-bench', item[0], item[1]]);
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()]);
  return (performance.now() - started) / 1000;
}

async function presignedUrls(sim: Simulator, ids: readonly string[]): Promise<string[]> {
  const tokenRes = await request(`${sim.url}/api/v2/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&client_id=cxrec-demo&client_secret=demo-secret',
  });
  const { access_token: token } = (await tokenRes.body.json()) as { access_token: string };
  const urls: string[] = [];
  for (const id of ids) {
    const res = await request(
      `${sim.url}/api/v2/recording/${encodeURIComponent(id)}/download?channel=combined`,
      {
        headers: { authorization: `Bearer ${token}` },
      },
    );
    urls.push(((await res.body.json()) as { url: string }).url);
  }
  return urls;
}

async function throughput(): Promise<BenchResult[]> {
  const count = quick ? 4 : 12;
  const size = 64 * 1024 * 1024;
  const rounds = quick ? 1 : 5;
  const ours: number[] = [];
  const tools: number[] = [];
  const plain: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const sim = await startSimulator({
      recordings: 0,
      seed: 9 + round,
      rateLimit: false,
      presignedUrlTtlMs: 3_600_000,
    });
    const ids = sim.addRecordings(
      Array.from({ length: count }, () => ({
        status: 'Available' as const,
        channels: { combined: { sizeBytes: size, etag: 'md5' as const } },
      })),
    );
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-tp-'));
    try {
      // Hash the objects once before timing, so the simulator's own md5 for the ETag is not in the measurement.
      await sim.truth();
      const totalMB = (count * size) / MB;
      const r = await exportOnce(sim, join(dir, 'cxrec'), {
        CXREC_RATE_LIMIT: '100000',
        CXREC_CONCURRENCY: '4',
      });
      ours.push(totalMB / r.seconds);
      await exec('mkdir', ['-p', join(dir, 'tools'), join(dir, 'plain')]);
      tools.push(totalMB / (await curlPipeline(sim, ids, join(dir, 'tools'), true)));
      plain.push(totalMB / (await curlPipeline(sim, ids, join(dir, 'plain'), false)));
    } finally {
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  // Each round runs both side by side on the same objects: the median of the
  // per-round ratios cancels what the machine's load does to a whole round.
  const ratio = med(ours.map((o, i) => o / (tools[i] ?? Infinity)));
  return [
    {
      figure: `export throughput, ${count} × 64 MiB, concurrency 4 (MB/s, median of ${rounds})`,
      target: 'report',
      measured: `${med(ours).toFixed(0)} MB/s`,
      pass: undefined,
      details: { runs: ours },
    },
    {
      figure: 'throughput vs curl | md5sum | sha256sum > file (same objects, concurrency 4)',
      target: '≥ 1.0×',
      measured: `${ratio.toFixed(2)}× (median of ${rounds} paired rounds; tools ${med(tools).toFixed(0)} MB/s)`,
      pass: ratio >= 1.0,
      details: { tools, ours, ratios: ours.map((o, i) => o / (tools[i] ?? Infinity)) },
    },
    {
      figure: 'ceiling: plain curl -o, concurrency 4',
      target: 'report',
      measured: `${med(plain).toFixed(0)} MB/s`,
      pass: undefined,
      details: { plain },
    },
  ];
}

async function peakRss(): Promise<BenchResult> {
  const size = quick ? 256 * 1024 * 1024 : 2 * 1024 * 1024 * 1024;
  const sim = await startSimulator({
    recordings: 0,
    seed: 3,
    rateLimit: false,
    presignedUrlTtlMs: 3_600_000,
  });
  sim.addRecordings([{ status: 'Available', channels: { combined: { sizeBytes: size, etag: 'md5' } } }]);
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-rss-'));
  try {
    await sim.truth();
    const r = await exportOnce(sim, dir, { CXREC_RATE_LIMIT: '100000' });
    const mb = r.peakRssBytes / MB;
    return {
      figure: `peak RSS exporting one ${quick ? '256 MiB' : '2 GiB'} recording`,
      target: '≤ 200 MB',
      measured: `${mb.toFixed(0)} MB`,
      pass: mb <= 200,
      details: { peakRssBytes: r.peakRssBytes, seconds: r.seconds },
    };
  } finally {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'export',
  async run() {
    return [await apiCallsPerRecording(), ...(await throughput()), await peakRss()];
  },
};
