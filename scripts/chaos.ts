/**
 * `npm run chaos`: the chaos soak of the single-process exporter. A
 * simulated tenant with every fault kind on, `cxrec export` SIGKILLed ten
 * times at seeded random moments and rerun until it exits 0, then the
 * invariants (nothing lost, corrupt, duplicated or half-visible, never over
 * the rate limit, at most 10 % of the bytes downloaded twice) as a table.
 * Exits 1 when one fails. Bounded in time; removes its temp dirs.
 *
 * Settings (environment): CHAOS_RECORDINGS (1000), CHAOS_KILLS (10),
 * CHAOS_SEED (1), CHAOS_RATE_LIMIT (1200 a minute), CHAOS_DEADLINE_SECONDS (900).
 */
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

const recordings = intSetting('CHAOS_RECORDINGS', 1000, 1);
const kills = intSetting('CHAOS_KILLS', 10, 0);
const seed = intSetting('CHAOS_SEED', 1, 0);
const rateLimit = intSetting('CHAOS_RATE_LIMIT', 1200, 1);
const deadlineSeconds = intSetting('CHAOS_DEADLINE_SECONDS', 900, 10);

// SIGINT/SIGTERM stop the soak the orderly way: the export is killed, the simulator stopped, temp dirs removed.
const stop = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());

process.stdout.write(
  `chaos soak: ${recordings} recordings, ${kills} SIGKILLs, seed ${seed}, rate limit ${rateLimit}/min, faults 'chaos'\n`,
);
const result = await runChaosSoak({
  recordings,
  kills,
  seed,
  rateLimit,
  // 16–256 KiB per object: about 140 MB for 1 000 recordings, so the run is
  // bound by the API budget and the faults, not by disk, on 2 cores.
  media: { minBytes: 16 * 1024, maxBytes: 256 * 1024 },
  // Early kills land in start-up and the first listing, later ones among downloads and waits.
  killDelayMs: [800, 12_000],
  maxReruns: 6,
  runTimeoutMs: 300_000,
  deadlineMs: deadlineSeconds * 1000,
  signal: stop.signal,
  log: (line) => process.stdout.write(`  ${line}\n`),
});
process.stdout.write(`\n${result.text}\n\n${result.pass ? 'chaos soak passed' : 'chaos soak FAILED'}\n`);
process.exitCode = result.pass ? 0 : 1;
