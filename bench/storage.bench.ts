/**
 * The byte path (issue 13): the same export (12 × 64 MiB, concurrency 4, no
 * rate limit) into each storage backend, beside plain `curl -o` at `-P4` on
 * the same objects, in paired rounds: each round starts a simulator and
 * runs curl, then cxrec into local, S3 and Azure, one after the other, so
 * the machine's load weighs on all of them alike. Figures are medians over
 * the rounds (the local/curl ratio is the median of the per-round ratios).
 *
 * - local: a directory on the same disk;
 * - S3: s3rver, in this process (beside the simulator), reached directly.
 *   The checking proxy is left out: it buffers and hashes every request
 *   body, so it would measure itself; its checks run in the tests;
 * - Azure: Azurite (a child process, in-memory persistence).
 *
 * s3rver and Azurite are test servers on the same machine, so their
 * figures compare the exporter's cost per backend, not what real S3 or
 * Azure would sustain. Peak RSS is the exporter's VmHWM. The 1-minute load
 * average is recorded at each round's start: the machine may be shared.
 * BENCH_QUICK=1 exports 4 recordings once; BENCH_ROUNDS sets the rounds;
 * BENCH_BACKENDS=local (or a comma list of local, s3, azure) measures only those.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';

import { startSimulator } from '../src/simulator/index.js';
import { startAzurite, startS3rver } from '../test/helpers/object-servers.js';
import { runCli } from '../test/helpers/run-cli.js';
import { curlPipeline, exportOnce, median } from './export-run.js';
import type { Benchmark, BenchResult } from './types.js';

const quick = process.env.BENCH_QUICK === '1';
const count = quick ? 4 : 12;
const rounds = quick ? 1 : Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const sizeBytes = 64 * 1024 * 1024;
const MB = 1_000_000;
const rssBudgetMB = 200;
/** The issue's target: cxrec's wall time at most this multiple of plain curl's. */
const maxTimeRatio = 1.5;

interface Target {
  name: string;
  /** Starts the server (if any) and returns the settings that point cxrec at it. */
  start(dir: string): Promise<{ env: Record<string, string>; stop(): Promise<void> }>;
}

const allTargets: readonly Target[] = [
  {
    name: 'local',
    start: (dir) =>
      Promise.resolve({ env: { CXREC_STORAGE: join(dir, 'store') }, stop: () => Promise.resolve() }),
  },
  {
    name: 'S3 (s3rver)',
    start: async () => {
      const s3 = await startS3rver();
      const bucket = `bench-${randomBytes(4).toString('hex')}`;
      const admin = new S3Client({
        endpoint: s3.rawEndpoint,
        region: s3.region,
        credentials: s3.credentials,
        forcePathStyle: true,
      });
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      admin.destroy();
      return {
        env: {
          CXREC_STORAGE: `s3://${bucket}/bench`,
          AWS_ENDPOINT_URL_S3: s3.rawEndpoint,
          CXREC_S3_FORCE_PATH_STYLE: 'true',
          AWS_REGION: s3.region,
          AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        },
        stop: () => s3.stop(),
      };
    },
  },
  {
    name: 'Azure (Azurite)',
    start: async () => {
      const azurite = await startAzurite(120_000);
      const container = `bench-${randomBytes(4).toString('hex')}`;
      await BlobServiceClient.fromConnectionString(azurite.connectionString)
        .getContainerClient(container)
        .create();
      return {
        env: {
          CXREC_STORAGE: `azblob://${container}/bench`,
          AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
        },
        stop: () => azurite.stop(),
      };
    },
  },
];

const wanted = process.env.BENCH_BACKENDS?.toLowerCase().split(',');
const targets = allTargets.filter(
  (t, i) => i === 0 || wanted === undefined || wanted.some((w) => t.name.toLowerCase().startsWith(w)),
);

function oneLine(err: unknown): string {
  return String(err).split('\n')[0]?.slice(0, 80) ?? '';
}

interface Round {
  load: number;
  curlSeconds: number;
  /** By target name. */
  seconds: Record<string, number>;
  peakRssBytes: Record<string, number>;
  /** Targets whose export or server failed in this round, with why. */
  errors: Record<string, string>;
}

async function round(seed: number): Promise<Round> {
  const sim = await startSimulator({ recordings: 0, seed, rateLimit: false, presignedUrlTtlMs: 3_600_000 });
  const ids = sim.addRecordings(
    Array.from({ length: count }, () => ({
      status: 'Available' as const,
      channels: { combined: { sizeBytes, etag: 'md5' as const } },
    })),
  );
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-bench-storage-'));
  try {
    // The simulator hashes each object once for its ETag; do it before timing.
    await sim.truth();
    const load = loadavg()[0] ?? 0;
    await mkdir(join(dir, 'curl'));
    const curlSeconds = await curlPipeline(sim, ids, join(dir, 'curl'), false);
    await rm(join(dir, 'curl'), { recursive: true, force: true });
    const result: Round = { load, curlSeconds, seconds: {}, peakRssBytes: {}, errors: {} };
    for (const target of targets) {
      const targetDir = join(dir, target.name.replace(/\W+/g, '-'));
      await mkdir(targetDir);
      // A backend that fails (Azurite slow to start on a loaded machine) costs its rows, not the others'.
      const backend = await target.start(targetDir).catch((err: unknown) => {
        result.errors[target.name] = oneLine(err);
        return undefined;
      });
      if (!backend) continue;
      try {
        const env = {
          CXONE_API_URL: sim.url,
          CXONE_CLIENT_ID: 'cxrec-demo',
          CXONE_CLIENT_SECRET: 'demo-secret',
          CXREC_STATE: join(targetDir, 'state.db'),
          CXREC_LOG_LEVEL: 'warn',
          CXREC_RATE_LIMIT: '100000',
          CXREC_CONCURRENCY: '4',
          ...backend.env,
        };
        const r = await exportOnce(sim, env);
        // Exit 0 already means every object was checked; this guards the figure against an empty export.
        const status = await runCli(['status', '--json'], env);
        const stored = (JSON.parse(status.stdout) as { byState: Record<string, number> }).byState.stored ?? 0;
        if (stored !== count) throw new Error(`${target.name}: ${stored} of ${count} recordings stored`);
        result.seconds[target.name] = r.seconds;
        result.peakRssBytes[target.name] = r.peakRssBytes;
      } catch (err) {
        result.errors[target.name] = oneLine(err);
      } finally {
        await backend.stop();
        await rm(targetDir, { recursive: true, force: true });
      }
    }
    return result;
  } finally {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'storage',
  async run() {
    const runs: Round[] = [];
    for (let i = 0; i < rounds; i++) runs.push(await round(13 + i));
    const totalMB = (count * sizeBytes) / MB;
    const measured = (name: string): Round[] => runs.filter((r) => r.seconds[name] !== undefined);
    const mbps = (name: string): number[] => measured(name).map((r) => totalMB / (r.seconds[name] ?? 0));
    const failures = (name: string): string => {
      const errors = runs.flatMap((r) => r.errors[name] ?? []);
      return errors.length === 0 ? '' : `; ${errors.length} of ${rounds} rounds failed: ${errors[0]}`;
    };
    const loads = runs.map((r) => Number(r.load.toFixed(2)));
    const load = `load ${median(loads).toFixed(1)}`;
    const ratios = measured('local').map((r) => (r.seconds.local ?? 0) / r.curlSeconds);
    const ratio = median(ratios);
    const curlMBps = median(runs.map((r) => totalMB / r.curlSeconds));
    const localMBps = median(mbps('local'));
    const of = `median of ${rounds}`;
    const rows: BenchResult[] = [
      {
        figure: `byte path: export ${count} × 64 MiB to local, concurrency 4, wall time / plain curl -o -P4 on the same objects`,
        target: `≤ ${maxTimeRatio}×`,
        measured: `${ratio.toFixed(2)}× (cxrec ${localMBps.toFixed(0)} MB/s, curl ${curlMBps.toFixed(0)} MB/s; ${of} paired rounds, ${load}${failures('local')})`,
        pass: ratios.length > 0 && ratio <= maxTimeRatio,
        details: {
          ratios,
          curlMBps: runs.map((r) => totalMB / r.curlSeconds),
          localMBps: mbps('local'),
          loads,
        },
      },
    ];
    for (const target of targets.slice(1)) {
      rows.push({
        figure: `byte path: export ${count} × 64 MiB to ${target.name}, concurrency 4 (MB/s beside local)`,
        target: 'report',
        measured: `${mbps(target.name).length === 0 ? 'not measured' : `${median(mbps(target.name)).toFixed(0)} MB/s`} (local ${localMBps.toFixed(0)} MB/s; ${of}, ${load}${failures(target.name)})`,
        pass: undefined,
        details: { mbps: mbps(target.name), loads },
      });
    }
    for (const target of targets) {
      const peaks = measured(target.name).map((r) => (r.peakRssBytes[target.name] ?? 0) / MB);
      const peak = median(peaks);
      rows.push({
        figure: `byte path: exporter peak RSS (VmHWM), ${target.name}, concurrency 4`,
        target: `≤ ${rssBudgetMB} MB`,
        measured: `${peaks.length === 0 ? 'not measured' : `${peak.toFixed(0)} MB`} (max ${Math.max(0, ...peaks).toFixed(0)}; ${of}${failures(target.name)})`,
        pass: peaks.length > 0 && Math.max(...peaks) <= rssBudgetMB,
        details: { peakRssMB: peaks },
      });
    }
    return rows;
  },
};
