/**
 * `cxrec simulate`: runs the CXone tenant simulator in the foreground so a
 * person can point cxrec at it, until SIGINT or SIGTERM.
 */
import { Command } from 'commander';

import { CxrecError } from '../errors.js';
import { isFaultProfile } from '../simulator/faults.js';
import { startSimulator } from '../simulator/index.js';
import { startPlatformSimulator } from '../simulator/platform/index.js';

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

type Dialect = 'recording-api' | 'platform';

function dialectFlag(value: string): Dialect {
  if (value !== 'recording-api' && value !== 'platform')
    throw new CxrecError(
      'usage',
      `--dialect must be recording-api or platform, got ${JSON.stringify(value)}`,
    );
  return value;
}

interface SimulateFlags {
  dialect: Dialect;
  playbackLimit: number;
  playbackWindow: number;
  port: number;
  host: string;
  recordings: number;
  seed: number;
  faults: 'none' | 'light' | 'chaos';
  rateLimit: number;
  timeScale: number;
}

/** The options both dialects' simulators take from the same flags. */
function tenantOptions(flags: SimulateFlags) {
  return {
    port: flags.port,
    host: flags.host,
    recordings: flags.recordings,
    seed: flags.seed,
    faults: flags.faults,
    timeScale: flags.timeScale,
    rateLimit: flags.rateLimit === 0 ? (false as const) : { requests: flags.rateLimit, windowSeconds: 60 },
  };
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
    .option(
      '--dialect <dialect>',
      'recording-api (one host) or platform (issuer, API host and media host on --port, +1, +2)',
      dialectFlag,
      'recording-api' as Dialect,
    )
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
    .option(
      '--playback-limit <n>',
      'platform only: media-playback requests per window (0: no limit); give cxrec the same CXREC_PLAYBACK_LIMIT',
      integerFlag('--playback-limit', 0, 1_000_000),
      150,
    )
    .option(
      '--playback-window <seconds>',
      'platform only: that window; give cxrec the same CXREC_PLAYBACK_WINDOW_SECONDS',
      integerFlag('--playback-window', 1, 86_400),
      300,
    )
    .action(async (flags: SimulateFlags) => {
      if (flags.dialect === 'platform') {
        await runPlatform(flags);
        return;
      }
      const sim = await startSimulator(tenantOptions(flags));
      const client = sim.clients[0];
      await serveUntilSignal(
        'CXone simulator',
        [
          `CXone simulator listening on ${sim.url} (${flags.recordings} recordings, seed ${flags.seed}, faults ${flags.faults}, ` +
            `rate limit ${flags.rateLimit === 0 ? 'off' : `${flags.rateLimit}/min`}, time scale ${flags.timeScale})`,
          `client id: ${client?.id ?? ''}  secret: ${client?.secret ?? ''}`,
          `stats: ${sim.url}/__stats  truth: ${sim.url}/__truth`,
        ],
        `  export CXONE_API_URL=${sim.url} CXONE_CLIENT_ID=${client?.id ?? ''} CXONE_CLIENT_SECRET=${client?.secret ?? ''}` +
          (flags.rateLimit === 0
            ? ' CXREC_RATE_LIMIT=1000000'
            : flags.rateLimit === 50
              ? ''
              : ` CXREC_RATE_LIMIT=${flags.rateLimit}`),
        () => sim.stop(),
      );
    });
}

/** Prints the banner and what to export for cxrec, serves until SIGINT or SIGTERM, then stops. */
async function serveUntilSignal(
  name: string,
  banner: readonly string[],
  exportLine: string,
  stop: () => Promise<void>,
): Promise<void> {
  process.stdout.write([...banner, '', exportLine, '', 'Ctrl-C stops it.', ''].join('\n'));
  await untilSignal();
  await stop();
  process.stdout.write(`${name} stopped.\n`);
}

function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** A shell word: single-quoted when it holds anything but safe characters (secrets hold `+ / =`). */
function shellWord(value: string): string {
  return /^[A-Za-z0-9_./:=+-]*$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

async function runPlatform(flags: SimulateFlags): Promise<void> {
  const sim = await startPlatformSimulator({
    ...tenantOptions(flags),
    playbackLimit:
      flags.playbackLimit === 0
        ? false
        : { requests: flags.playbackLimit, windowSeconds: flags.playbackWindow },
  });
  const key = sim.accessKey();
  const app = sim.applications[0];
  const noPlayback = sim.accessKeys.find((k) => k.playback === false);
  const noReporting = sim.accessKeys.find((k) => k.reporting === false);
  const vars: [string, string][] = [
    ['CXONE_DIALECT', 'platform'],
    ['CXONE_AUTH_URL', sim.urls.issuer],
    ['CXONE_ACCESS_KEY_ID', key.id],
    ['CXONE_ACCESS_KEY_SECRET', key.secret],
    ['CXONE_CLIENT_ID', app?.id ?? ''],
    ['CXONE_CLIENT_SECRET', app?.secret ?? ''],
    ['CXREC_MEDIA_HOSTS', new URL(sim.urls.media).hostname],
    ['CXREC_RATE_LIMIT', flags.rateLimit === 0 ? '1000000' : String(flags.rateLimit)],
    ['CXREC_PLAYBACK_LIMIT', flags.playbackLimit === 0 ? '1000000' : String(flags.playbackLimit)],
    ['CXREC_PLAYBACK_WINDOW_SECONDS', String(flags.playbackWindow)],
  ];
  await serveUntilSignal(
    'CXone platform simulator',
    [
      `CXone platform simulator (${flags.recordings} calls, seed ${flags.seed}, faults ${flags.faults}, ` +
        `rate limit ${flags.rateLimit === 0 ? 'off' : `${flags.rateLimit}/min`}, playback ` +
        `${flags.playbackLimit === 0 ? 'off' : `${flags.playbackLimit}/${flags.playbackWindow}s`}, time scale ${flags.timeScale})`,
      `issuer: ${sim.urls.issuer}  API host: ${sim.urls.api}  media host: ${sim.urls.media}  tenant: ${sim.tenantId}`,
      `stats: ${sim.urls.api}/__stats  truth: ${sim.urls.api}/__truth`,
      ...(noPlayback
        ? [`access key without the playback permission: ${noPlayback.id} / ${noPlayback.secret}`]
        : []),
      ...(noReporting
        ? [`access key without the Reporting permission: ${noReporting.id} / ${noReporting.secret}`]
        : []),
    ],
    `  export ${vars.map(([k, v]) => `${k}=${shellWord(v)}`).join(' ')}`,
    () => sim.stop(),
  );
}
