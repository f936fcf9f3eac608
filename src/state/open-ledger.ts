/**
 * Picks the ledger backend from `CXREC_STATE`: an explicit scheme → factory
 * map, so no backend registers itself as an import side effect.
 */
import { CxrecError } from '../errors.js';
import type { Ledger } from './ledger.js';
import { openPostgresLedger } from './postgres.js';
import { openSqliteLedger } from './sqlite.js';

type LedgerFactory = (state: string) => Promise<Ledger>;

/** URL schemes with a backend of their own. */
const byScheme: Readonly<Record<string, LedgerFactory>> = {
  postgres: openPostgresLedger,
  postgresql: openPostgresLedger,
};

/** Opens the ledger named by `CXREC_STATE` (a SQLite file path, `:memory:`, or a URL above) and migrates it. */
export function openLedger(state: string): Promise<Ledger> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(state)?.[1]?.toLowerCase();
  if (scheme === undefined) return openSqliteLedger(state);
  const factory = byScheme[scheme];
  if (!factory) {
    // A typo'd URL would otherwise become a SQLite file named like a URL.
    return Promise.reject(
      new CxrecError(
        'config_invalid',
        `CXREC_STATE uses the unknown scheme ${scheme}://; give a SQLite file path or a postgres:// URL`,
      ),
    );
  }
  return factory(state);
}
