/**
 * `npm run demo`: a newcomer's first run. Starts a simulated CXone tenant
 * (300 recordings, light faults, processing delays shortened 60×, a rate
 * limit of 600 calls a minute so the demo takes about a minute, not ten),
 * exports its last day into ./demo/recordings with the real `cxrec` binary,
 * then verifies every stored object.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';

import { startSimulator } from '../src/simulator/index.js';

const demoDir = resolve('demo');
const cli = resolve('dist/cli.js');

function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, ...env },
      stdio: 'inherit',
    });
    child.once('error', fail);
    child.once('close', (code) => done(code ?? 1));
  });
}

await rm(demoDir, { recursive: true, force: true });
const sim = await startSimulator({
  recordings: 300,
  seed: 42,
  faults: 'light',
  timeScale: 60,
  rateLimit: { requests: 600, windowSeconds: 60 },
});
const truth = await sim.truth();
const env = {
  CXONE_API_URL: sim.url,
  CXONE_CLIENT_ID: 'cxrec-demo',
  CXONE_CLIENT_SECRET: 'demo-secret',
  CXREC_STORAGE: resolve(demoDir, 'recordings'),
  CXREC_STATE: resolve(demoDir, 'cxrec-state.db'),
  CXREC_RATE_LIMIT: '600',
  CXREC_POLL_SECONDS: '1',
  CXREC_BACKOFF_SECONDS: '0.5',
};
process.stdout.write(
  `Simulated CXone tenant at ${sim.url}: ${truth.recordings.length} recordings created since ${truth.createdFrom}.\n` +
    `Exporting them into ${env.CXREC_STORAGE} (ledger ${env.CXREC_STATE})...\n\n`,
);
let code = 1;
try {
  code = await run(['export', '--since', truth.createdFrom], env);
  process.stdout.write('\nVerifying every stored object against the ledger...\n');
  const verified = await run(['verify'], env);
  if (code === 0 && verified !== 0) code = verified;
  const stats = sim.stats();
  const { sent429, maxAcceptedInWindow, maxArrivalsInWindow, peakWindowSeconds } = stats.rateLimit;
  // The limit itself can refuse only once a window is full; below that, every 429 was a burst the light profile injected.
  const why =
    sent429 === 0 ? '' : maxAcceptedInWindow < 600 ? ' (all injected by the light fault profile)' : '';
  process.stdout.write(
    `\nThe simulator answered 429 ${sent429} times${why}, and saw at most ${maxArrivalsInWindow} ` +
      `API requests in any ${peakWindowSeconds} s window (limit 600).\n` +
      `Try: CXREC_STATE=${env.CXREC_STATE} npx cxrec status\n`,
  );
} finally {
  await sim.stop();
}
process.exitCode = code;
