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
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startSimulator, type Simulator } from '../src/simulator/index.js';
import { curlPipeline, exportOnce, median as med } from './export-run.js';
import type { Benchmark, BenchResult } from './types.js';

const quick = process.env.BENCH_QUICK === '1';
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
    await exportOnce(sim, envFor(sim, dir, { CXREC_RATE_LIMIT: '6000' }));
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
      const r = await exportOnce(
        sim,
        envFor(sim, join(dir, 'cxrec'), { CXREC_RATE_LIMIT: '100000', CXREC_CONCURRENCY: '4' }),
      );
      ours.push(totalMB / r.seconds);
      await mkdir(join(dir, 'tools'), { recursive: true });
      await mkdir(join(dir, 'plain'), { recursive: true });
      tools.push(totalMB / (await curlPipeline(sim, ids, join(dir, 'tools'), true)));
      plain.push(totalMB / (await curlPipeline(sim, ids, join(dir, 'plain'), false)));
    } finally {
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
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
    const r = await exportOnce(sim, envFor(sim, dir, { CXREC_RATE_LIMIT: '100000' }));
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
