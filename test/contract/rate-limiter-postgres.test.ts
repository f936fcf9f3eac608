/**
 * The rate limiter suite against the shared PostgreSQL limiter on the
 * machine's real PostgreSQL (CXREC_TEST_POSTGRES): every test gets its own
 * database, and each open stands for another cxrec process.
 */
import { createTestDatabase } from '../helpers/postgres-database.js';
import { openRateLimiters } from '../../src/state/open-state.js';
import { rateLimiterSuite } from './rate-limiter.suite.js';

rateLimiterSuite(
  'PostgreSQL',
  async () => {
    const db = await createTestDatabase();
    return {
      // A short ramp poll: a process held by another's slow start asks again soon.
      open: (budgets) => openRateLimiters({ kind: 'postgres', url: db.url }, budgets, { rampPollMs: 50 }),
      cleanup: () => db.drop(),
    };
  },
  { persisted: true, shared: true },
);
