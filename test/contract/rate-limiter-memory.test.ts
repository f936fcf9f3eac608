/** The rate limiter suite against the in-process limiter (`CXREC_STATE=:memory:`). */
import { openRateLimiters } from '../../src/state/open-state.js';
import { rateLimiterSuite } from './rate-limiter.suite.js';

rateLimiterSuite(
  'in-process',
  () =>
    Promise.resolve({
      open: (budgets) => openRateLimiters({ kind: 'memory' }, budgets),
      cleanup: () => Promise.resolve(),
    }),
  { persisted: false, shared: false },
);
