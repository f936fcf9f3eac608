/**
 * `npm run chaos`: the chaos soaks, both by default.
 *
 * 1. Single process: a simulated tenant with every fault kind on, `cxrec
 *    export` SIGKILLed at seeded random moments and rerun until it exits 0.
 * 2. Distributed: three `cxrec run` processes on one fresh PostgreSQL
 *    ledger, run processes SIGKILLed at seeded random moments (and
 *    restarted), PostgreSQL itself restarted once mid-run, SIGTERM once the
 *    ledger settled (`test/helpers/chaos-distributed.ts`).
 *
 * Each runs against a tenant of each dialect in turn: the recording API
 * (cxone-api.md), then the platform (cxone-platform-api.md: access-key
 * login, completed contacts, media playback with its own budget).
 *
 * Each ends with the invariants (nothing lost, corrupt, duplicated or
 * half-visible, never over the rate limit, at most 10 % of the bytes
 * downloaded twice) as a table. Exits 1 when one fails. Bounded in time;
 * removes its temp dirs (and the distributed soak its database).
 *
 * `npm run chaos -- --single` or `-- --distributed` (or CHAOS_MODE=single |
 * distributed) runs one of them; `-- --platform` or `-- --recording-api`
 * (or CHAOS_DIALECT) one dialect. The distributed soak restarts the
 * machine's PostgreSQL, so it is kept out of `npm test`, whose files run in
 * parallel and would lose their connections.
 *
 * Settings (environment): CHAOS_RECORDINGS (1000), CHAOS_KILLS (10),
 * CHAOS_SEED (1), CHAOS_RATE_LIMIT (1200 a minute), CHAOS_PLAYBACK_LIMIT (600
 * a minute, platform), CHAOS_DEADLINE_SECONDS (900, each soak),
 * CHAOS_PROCESSES (3, distributed).
 */
import type { Dialect } from '../src/config.js';
import { runDistributedSoak } from '../test/helpers/chaos-distributed.js';
import { runChaosSoak } from '../test/helpers/chaos-soak.js';

function intSetting(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`${name} must be a whole number ≥ ${min} (got ${JSON.stringify(raw)})\n`);
    process.exit(2);
  }
  return n;
}

type Mode = 'both' | 'single' | 'distributed';
const modeFlags = ['--single', '--distributed'];
const dialectFlags = ['--recording-api', '--platform'];
function usage(): never {
  process.stderr.write(
    'usage: npm run chaos [-- --single | --distributed] [--recording-api | --platform]\n' +
      '  (or CHAOS_MODE=single|distributed, CHAOS_DIALECT=recording-api|platform)\n',
  );
  process.exit(2);
}
function mode(): Mode {
  const args = process.argv.slice(2);
  const flags = args.filter((a) => modeFlags.includes(a));
  const unknown = args.filter((a) => !modeFlags.includes(a) && !dialectFlags.includes(a));
  const env = process.env.CHAOS_MODE ?? '';
  if (unknown.length > 0 || (env !== '' && env !== 'single' && env !== 'distributed' && env !== 'both'))
    usage();
  if (flags.length === 1) return flags[0] === '--single' ? 'single' : 'distributed';
  return env === 'single' || env === 'distributed' ? env : 'both';
}
function dialects(): Dialect[] {
  const flags = process.argv.slice(2).filter((a) => dialectFlags.includes(a));
  const env = process.env.CHAOS_DIALECT ?? '';
  if (env !== '' && env !== 'recording-api' && env !== 'platform' && env !== 'both') usage();
  if (flags.length === 1) return [flags[0] === '--platform' ? 'platform' : 'recording-api'];
  return env === 'recording-api' || env === 'platform' ? [env] : ['recording-api', 'platform'];
}

const which = mode();
const dialectsToRun = dialects();
const recordings = intSetting('CHAOS_RECORDINGS', 1000, 1);
const kills = intSetting('CHAOS_KILLS', 10, 0);
const seed = intSetting('CHAOS_SEED', 1, 0);
const rateLimit = intSetting('CHAOS_RATE_LIMIT', 1200, 1);
const playbackLimit = intSetting('CHAOS_PLAYBACK_LIMIT', 600, 1);
const deadlineSeconds = intSetting('CHAOS_DEADLINE_SECONDS', 900, 10);
const processes = intSetting('CHAOS_PROCESSES', 3, 1);
// 16–256 KiB per object: about 140 MB for 1 000 recordings, so the run is
// bound by the API budget and the faults, not by disk, on 2 cores.
const media = { minBytes: 16 * 1024, maxBytes: 256 * 1024 };

// SIGINT/SIGTERM stop the soak the orderly way: children killed, the simulator stopped, temp dirs removed.
const stop = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
const log = (line: string): void => void process.stdout.write(`  ${line}\n`);

let failed = false;
for (const dialect of dialectsToRun) {
  if (which !== 'distributed' && !stop.signal.aborted) {
    process.stdout.write(
      `chaos soak (${dialect}): ${recordings} recordings, ${kills} SIGKILLs, seed ${seed}, rate limit ${rateLimit}/min, faults 'chaos'${dialect === 'platform' ? `, playback ${playbackLimit}/min` : ''}\n`,
    );
    const result = await runChaosSoak({
      dialect,
      playbackLimit,
      recordings,
      kills,
      seed,
      rateLimit,
      media,
      // Early kills land in start-up and the first listing, later ones among downloads and waits.
      killDelayMs: [800, 12_000],
      maxReruns: 6,
      runTimeoutMs: 300_000,
      deadlineMs: deadlineSeconds * 1000,
      signal: stop.signal,
      log,
    });
    process.stdout.write(
      `\n${result.text}\n\n${result.pass ? `chaos soak (${dialect}) passed` : `chaos soak (${dialect}) FAILED`}\n\n`,
    );
    failed ||= !result.pass;
  }
  if (which !== 'single' && !stop.signal.aborted) {
    process.stdout.write(
      `distributed chaos soak (${dialect}): ${recordings} recordings, ${processes} run processes on PostgreSQL, ${kills} SIGKILLs, 1 PostgreSQL restart, seed ${seed}, rate limit ${rateLimit}/min, faults 'chaos'${dialect === 'platform' ? `, playback ${playbackLimit}/min` : ''}\n`,
    );
    const result = await runDistributedSoak({
      dialect,
      playbackLimit,
      recordings,
      kills,
      seed,
      rateLimit,
      processes,
      media,
      // The fleet needs a few seconds to start (tsx) and list; then a kill every 2–7 s, with the restart among them.
      firstKillMs: [3000, 8000],
      killGapMs: [2000, 7000],
      deadlineMs: deadlineSeconds * 1000,
      signal: stop.signal,
      log,
    });
    process.stdout.write(
      `\n${result.text}\n\n${result.pass ? `distributed chaos soak (${dialect}) passed` : `distributed chaos soak (${dialect}) FAILED`}\n`,
    );
    failed ||= !result.pass;
  }
}
process.exitCode = failed || stop.signal.aborted ? 1 : 0;
