/** The rate limiter suite against the in-process limiter persisted in a SQLite ledger file, one file per test. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openRateLimiters } from '../../src/state/open-state.js';
import { rateLimiterSuite } from './rate-limiter.suite.js';

rateLimiterSuite(
  'SQLite',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cxrec-rate-'));
    const path = join(dir, 'state.db');
    return {
      open: (budgets) => openRateLimiters({ kind: 'sqlite', path }, budgets),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  { persisted: true, shared: false },
);
