/**
 * The tenant's rate budgets opened together from one `CXREC_STATE`: one
 * `RateLimiter` per named budget, closed together (on SQLite and
 * PostgreSQL they share one connection).
 */
import type { RateBudget, RateLimiter } from '../cxone/rate-limiter.js';
import { CxrecError } from '../errors.js';

export interface OpenedRateLimiters<Name extends string = string, L extends RateLimiter = RateLimiter> {
  /** One limiter per budget, by name. */
  limiters: Readonly<Record<Name, L>>;
  /** Rejects waiting callers where the limiter can, and closes the connection. Idempotent; safe to pass around unbound. */
  close: () => Promise<void>;
}

/**
 * Calls `open` for each budget, in order, and returns the limiters by
 * name. Throws `config_invalid` on an empty list or a name given twice
 * (two limiters for one count would let through twice the budget).
 */
export function limitersByName<Name extends string, L>(
  budgets: readonly RateBudget<Name>[],
  open: (budget: RateBudget<Name>) => L,
): Record<Name, L> {
  if (budgets.length === 0) throw new CxrecError('config_invalid', 'no rate budget to open');
  const out = {} as Record<Name, L>;
  for (const budget of budgets) {
    if (Object.hasOwn(out, budget.name)) {
      throw new CxrecError('config_invalid', `the rate budget ${budget.name} is given twice`);
    }
    out[budget.name] = open(budget);
  }
  return out;
}
