/**
 * Injected faults. Each kind has a probability per eligible request; the
 * dice come from a PRNG seeded by the tenant seed, so a test that sends its
 * requests in a fixed order meets the same faults every run.
 */
import type { FaultProbabilities, FaultProfile, FaultsOption } from './options.js';
import { SeededRandom } from './seeded-random.js';

export type FaultKind = keyof FaultProbabilities;
export const faultKinds: readonly FaultKind[] = [
  'rateLimitBurst',
  'serverError',
  'connectionReset',
  'shortBody',
  'tokenRevocation',
  'cursorInvalidation',
  'stall',
];

export const faultProfiles: Readonly<Record<FaultProfile, Readonly<Required<FaultProbabilities>>>> = {
  none: {
    rateLimitBurst: 0,
    serverError: 0,
    connectionReset: 0,
    shortBody: 0,
    tokenRevocation: 0,
    cursorInvalidation: 0,
    stall: 0,
  },
  light: {
    rateLimitBurst: 0.01,
    serverError: 0.02,
    connectionReset: 0.01,
    shortBody: 0.01,
    tokenRevocation: 0.01,
    cursorInvalidation: 0.02,
    stall: 0.005,
  },
  chaos: {
    rateLimitBurst: 0.05,
    serverError: 0.1,
    connectionReset: 0.05,
    shortBody: 0.05,
    tokenRevocation: 0.05,
    cursorInvalidation: 0.1,
    stall: 0.02,
  },
};

export function isFaultProfile(value: string): value is FaultProfile {
  return Object.hasOwn(faultProfiles, value);
}

export function resolveFaults(option: FaultsOption): Required<FaultProbabilities> {
  if (typeof option === 'string') {
    if (!isFaultProfile(option)) throw new RangeError(`unknown fault profile ${String(option)}`);
    return { ...faultProfiles[option] };
  }
  const resolved = { ...faultProfiles.none, ...option };
  for (const kind of faultKinds) {
    const p = resolved[kind];
    if (!(p >= 0 && p <= 1)) throw new RangeError(`fault probability ${kind} must be within 0..1`);
  }
  return resolved;
}

export class FaultInjector {
  private probabilities: Required<FaultProbabilities>;
  private readonly random: SeededRandom;
  /** Faults injected per kind: the `none` profile's zeros to start with. */
  readonly injected: Record<FaultKind, number> = { ...faultProfiles.none };

  constructor(option: FaultsOption, seed: number) {
    this.probabilities = resolveFaults(option);
    this.random = new SeededRandom(seed, 7);
  }

  set(option: FaultsOption): void {
    this.probabilities = resolveFaults(option);
  }

  current(): Required<FaultProbabilities> {
    return { ...this.probabilities };
  }

  /** Rolls the dice for `kind`; counts it when it hits. */
  roll(kind: FaultKind): boolean {
    const p = this.probabilities[kind];
    // No draw at probability 0, so turning one kind on does not reshuffle the others.
    if (p <= 0 || !this.random.chance(p)) return false;
    this.injected[kind]++;
    return true;
  }

  /** Where in a body of `length` bytes to cut it: never at 0 bytes and never at the end. */
  cutPoint(length: number): number {
    if (length <= 1) return 0;
    return this.random.int(1, length - 1);
  }

  int(min: number, max: number): number {
    return this.random.int(min, max);
  }

  resetCounts(): void {
    for (const kind of faultKinds) this.injected[kind] = 0;
  }
}
