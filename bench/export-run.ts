/**
 * What the byte-path benchmarks share: `cxrec export` run to completion as a
 * child process (the built CLI, as operators run it) with its peak RSS read
 * from /proc, and the same objects fetched with plain `curl`.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { request } from 'undici';

import type { Simulator } from '../src/simulator/index.js';
import { startCli } from '../test/helpers/run-cli.js';

const exec = promisify(execFile);

/** Runs `cxrec export --since <window start>`, sampling the child's peak RSS (VmHWM, which never decreases). */
export async function exportOnce(
  sim: Simulator,
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; peakRssBytes: number }> {
  const since = (await sim.truth()).createdFrom;
  const started = performance.now();
  const run = startCli(['export', '--since', since], env, { built: true });
  let peak = 0;
  const sample = async (): Promise<void> => {
    try {
      const status = await readFile(`/proc/${run.child.pid ?? 0}/status`, 'utf8');
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024);
    } catch {
      // The process has exited; the last sample stands.
    }
  };
  const timer = setInterval(() => void sample(), 100);
  const res = await run.done;
  clearInterval(timer);
  if (res.code !== 0) throw new Error(`export exited ${res.code}: ${res.stderr.slice(-500)}`);
  return { seconds: (performance.now() - started) / 1000, peakRssBytes: peak };
}

/**
 * The objects through `curl` at concurrency 4, into files in `dir`: plain
 * `curl -o`, or (`hash`) piped through md5sum and sha256sum. Timed from
 * asking for the download URLs, as an export's time runs from its start:
 * both do the same work (a token, a URL per object, the transfers).
 */
export async function curlPipeline(
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

/** The median (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
}
