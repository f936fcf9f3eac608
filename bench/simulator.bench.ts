/**
 * The simulator's own promise (issue 2): a 2 GiB object streams with the
 * simulator process under 150 MB RSS, and its md5 equals the truth. Runs
 * `bench/simulator-rss.ts`, which forks the simulator and samples VmHWM.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import type { Benchmark } from './types.js';

const exec = promisify(execFile);

export const benchmark: Benchmark = {
  name: 'simulator',
  async run() {
    const script = fileURLToPath(new URL('simulator-rss.ts', import.meta.url));
    // The script exits 1 when a check fails; its JSON report is printed either way.
    let stdout: string;
    try {
      ({ stdout } = await exec(process.execPath, ['--import', 'tsx', script], { maxBuffer: 1 << 20 }));
    } catch (err) {
      stdout = typeof err === 'object' && err !== null && 'stdout' in err ? String(err.stdout) : '';
    }
    const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
      md5MatchesTruth: boolean;
      peakRssIncludingTruthHashMb: number;
      streamSeconds: number;
      targetMb: number;
    };
    return [
      {
        figure: 'simulator peak RSS streaming one 2 GiB object (md5 = truth)',
        target: `< ${report.targetMb} MB`,
        measured: `${report.peakRssIncludingTruthHashMb} MB${report.md5MatchesTruth ? '' : ' (md5 MISMATCH)'}`,
        pass: report.md5MatchesTruth && report.peakRssIncludingTruthHashMb < report.targetMb,
        details: report,
      },
    ];
  },
};
