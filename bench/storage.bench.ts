/**
 * The same export (12 × 64 MiB, concurrency 4, no rate limit) into each
 * storage backend, side by side: throughput and the exporter's peak RSS.
 *
 * - local: a directory on the same disk;
 * - S3: s3rver, in this process, reached directly. The checking proxy is
 *   left out: it buffers and hashes every request body, so it would measure
 *   itself; its correctness checks run in the tests;
 * - Azure: Azurite (a child process, in-memory persistence).
 *
 * s3rver and Azurite are test servers on the same machine (s3rver shares
 * this process's CPU), so the numbers compare the exporter's cost per
 * backend, not what real S3 or Azure would sustain. BENCH_QUICK=1 exports
 * 4 recordings.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startSimulator, type Simulator } from '../src/simulator/index.js';
import {
  createTestBucket,
  createTestContainer,
  startAzurite,
  startS3rver,
} from '../test/helpers/object-servers.js';
import { runCli, startCli } from '../test/helpers/run-cli.js';
import type { Benchmark, BenchResult } from './types.js';

const quick = process.env.BENCH_QUICK === '1';
const count = quick ? 4 : 12;
const sizeBytes = 64 * 1024 * 1024;
const MB = 1_000_000;

interface Target {
  name: string;
  /** Starts the server (if any) and returns the settings that point cxrec at it. */
  start(dir: string): Promise<{ env: Record<string, string>; stop(): Promise<void> }>;
}

const targets: readonly Target[] = [
  {
    name: 'local',
    start: (dir) =>
      Promise.resolve({ env: { CXREC_STORAGE: join(dir, 'store') }, stop: () => Promise.resolve() }),
  },
  {
    name: 'S3 (s3rver, no proxy)',
    start: async () => {
      const s3 = await startS3rver();
      const { admin, env } = await createTestBucket(s3, { name: 'bench', prefix: 'bench', raw: true });
      admin.destroy();
      return {
        env,
        stop: () => s3.stop(),
      };
    },
  },
  {
    name: 'Azure (Azurite)',
    start: async () => {
      const azurite = await startAzurite();
      const { env } = await createTestContainer(azurite, { name: 'bench', prefix: 'bench' });
      return {
        env,
        stop: () => azurite.stop(),
      };
    },
  },
];

/** Runs `cxrec export` to completion, sampling the child's peak RSS (VmHWM). */
async function exportOnce(
  sim: Simulator,
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; peakRssBytes: number }> {
  const since = (await sim.truth()).createdFrom;
  const started = performance.now();
  const run = startCli(['export', '--since', since], env);
  let peak = 0;
  const sample = async (): Promise<void> => {
    try {
      const status = await readFile(`/proc/${run.child.pid ?? 0}/status`, 'utf8');
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024);
    } catch {
      // The process has exited; VmHWM never decreases, so the last sample stands.
    }
  };
  const timer = setInterval(() => void sample(), 100);
  const res = await run.done;
  clearInterval(timer);
  if (res.code !== 0) throw new Error(`export exited ${res.code}: ${res.stderr.slice(-500)}`);
  return { seconds: (performance.now() - started) / 1000, peakRssBytes: peak };
}

async function measure(target: Target): Promise<BenchResult> {
  const sim = await startSimulator({
    recordings: 0,
    seed: 13,
    rateLimit: false,
    presignedUrlTtlMs: 3_600_000,
  });
  sim.addRecordings(
    Array.from({ length: count }, () => ({
      status: 'Available' as const,
      channels: { combined: { sizeBytes, etag: 'md5' as const } },
    })),
  );
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-storage-'));
  const backend = await target.start(dir);
  try {
    // The simulator hashes each object once for its ETag; do it before timing.
    await sim.truth();
    const env = {
      CXONE_API_URL: sim.url,
      CXONE_CLIENT_ID: 'cxrec-demo',
      CXONE_CLIENT_SECRET: 'demo-secret',
      CXREC_STATE: join(dir, 'state.db'),
      CXREC_LOG_LEVEL: 'warn',
      CXREC_RATE_LIMIT: '100000',
      CXREC_CONCURRENCY: '4',
      ...backend.env,
    };
    const r = await exportOnce(sim, env);
    // An exit 0 already means every object was checked; this guards the figure against an empty export.
    const status = await runCli(['status', '--json'], env);
    const stored = (JSON.parse(status.stdout) as { byState: Record<string, number> }).byState.stored ?? 0;
    if (stored !== count) throw new Error(`${target.name}: ${stored} of ${count} recordings stored`);
    const mbps = (count * sizeBytes) / MB / r.seconds;
    return {
      figure: `export ${count} × 64 MiB to ${target.name}, concurrency 4`,
      target: 'report',
      measured: `${mbps.toFixed(0)} MB/s, peak RSS ${(r.peakRssBytes / MB).toFixed(0)} MB`,
      pass: undefined,
      details: {
        backend: target.name,
        seconds: r.seconds,
        mbps,
        peakRssBytes: r.peakRssBytes,
        count,
        sizeBytes,
      },
    };
  } finally {
    await backend.stop();
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'storage',
  async run() {
    const results: BenchResult[] = [];
    for (const target of targets) results.push(await measure(target));
    return results;
  },
};
