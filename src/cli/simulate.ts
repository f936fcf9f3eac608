/**
 * `cxrec simulate`: runs the CXone tenant simulator in the foreground so a
 * person can point cxrec at it, until SIGINT or SIGTERM.
 */
import { Command } from 'commander';

import { CxrecError } from '../errors.js';
import { isFaultProfile } from '../simulator/faults.js';
import { startSimulator } from '../simulator/index.js';

function integerFlag(flag: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new CxrecError(
        'usage',
        `${flag} must be an integer within ${min}..${max}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

function faultsFlag(value: string): 'none' | 'light' | 'chaos' {
  if (!isFaultProfile(value))
    throw new CxrecError('usage', `--faults must be none, light or chaos, got ${JSON.stringify(value)}`);
  return value;
}

interface SimulateFlags {
  port: number;
  host: string;
  recordings: number;
  seed: number;
  faults: 'none' | 'light' | 'chaos';
  rateLimit: number;
  timeScale: number;
}

function positiveNumberFlag(flag: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(value.trim()) || !(n > 0) || n > max) {
      throw new CxrecError(
        'usage',
        `${flag} must be a number above 0 and at most ${max}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

export function simulateCommand(): Command {
  return new Command('simulate')
    .description('Run a simulated CXone tenant (API, media host, rate limit, faults) until Ctrl-C.')
    .option('--port <n>', 'TCP port (0 picks a free one)', integerFlag('--port', 0, 65535), 0)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--recordings <n>', 'recordings in the tenant', integerFlag('--recordings', 0, 1_000_000), 100)
    .option(
      '--seed <n>',
      'seed of every generated recording and fault',
      integerFlag('--seed', 0, 2 ** 32 - 1),
      1,
    )
    .option('--faults <profile>', 'none, light or chaos', faultsFlag, 'none')
    .option(
      '--rate-limit <n>',
      'API requests per minute the tenant accepts (0: no limit); give cxrec the same CXREC_RATE_LIMIT',
      integerFlag('--rate-limit', 0, 1_000_000),
      50,
    )
    .option(
      '--time-scale <n>',
      'run platform time this many times faster (processing delays, URL/token/cursor lifetimes)',
      positiveNumberFlag('--time-scale', 100_000),
      1,
    )
    .action(async (flags: SimulateFlags) => {
      const sim = await startSimulator({
        port: flags.port,
        host: flags.host,
        recordings: flags.recordings,
        seed: flags.seed,
        faults: flags.faults,
        timeScale: flags.timeScale,
        rateLimit: flags.rateLimit === 0 ? false : { requests: flags.rateLimit, windowSeconds: 60 },
      });
      const client = sim.clients[0];
      process.stdout.write(
        [
          `CXone simulator listening on ${sim.url} (${flags.recordings} recordings, seed ${flags.seed}, faults ${flags.faults}, ` +
            `rate limit ${flags.rateLimit === 0 ? 'off' : `${flags.rateLimit}/min`}, time scale ${flags.timeScale})`,
          `client id: ${client?.id ?? ''}  secret: ${client?.secret ?? ''}`,
          `stats: ${sim.url}/__stats  truth: ${sim.url}/__truth`,
          '',
          `  export CXONE_API_URL=${sim.url} CXONE_CLIENT_ID=${client?.id ?? ''} CXONE_CLIENT_SECRET=${client?.secret ?? ''}` +
            (flags.rateLimit === 0
              ? ' CXREC_RATE_LIMIT=1000000'
              : flags.rateLimit === 50
                ? ''
                : ` CXREC_RATE_LIMIT=${flags.rateLimit}`),
          '',
          'Ctrl-C stops it.',
          '',
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await sim.stop();
      process.stdout.write('CXone simulator stopped.\n');
    });
}
