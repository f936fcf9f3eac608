/**
 * Which generated recording (or call) gets which trait. Each trait takes
 * `round(n × share)` items, in plan order, from one seeded shuffle: the
 * shares come out exact, no item gets two traits, and the same seed picks
 * the same items.
 */
import type { SeededRandom } from './seeded-random.js';

export function assignTraits<Trait>(
  n: number,
  plan: readonly (readonly [Trait, number])[],
  random: SeededRandom,
): Map<number, Trait> {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = random.int(0, i);
    [order[i], order[j]] = [order[j] ?? 0, order[i] ?? 0];
  }
  const traitOf = new Map<number, Trait>();
  let next = 0;
  for (const [trait, share] of plan) {
    for (let k = Math.round(n * share); k > 0 && next < n; k--) traitOf.set(order[next++] ?? 0, trait);
  }
  return traitOf;
}
