/**
 * The HTTP transport of the CXone client: one undici `Agent` per process
 * (keep-alive, so the TLS handshake is paid once, not per API call), with
 * explicit timeouts so a stalled server turns into a retryable timeout
 * instead of a hung worker. The pipeline fetches presigned media URLs
 * through an agent made here too, with the same URL policy.
 */
import { Agent } from 'undici';

import { CxrecError } from '../errors.js';
import { safeUrl } from '../redact.js';
import { urlSchemeProblem } from '../url-policy.js';

export interface HttpAgentOptions {
  /** TCP + TLS connect timeout. @default 10000 */
  connectTimeoutMs?: number;
  /** Time from sending a request to receiving the whole header block. @default 30000 */
  headersTimeoutMs?: number;
  /**
   * Longest silence between two body chunks (not the whole body: a 2 GiB
   * media download may take minutes). @default 30000
   */
  bodyTimeoutMs?: number;
  /** How long an idle keep-alive socket is kept. @default 30000 */
  keepAliveTimeoutMs?: number;
  /**
   * Sockets per origin. The rate limiter, not the socket pool, bounds API
   * traffic; this only bounds parallel media downloads per host. @default 64
   */
  connectionsPerOrigin?: number;
}

/** An undici `Agent` with keep-alive and the timeouts above. The caller owns it (`close()` at shutdown). */
export function createHttpAgent(options: HttpAgentOptions = {}): Agent {
  return new Agent({
    connect: { timeout: options.connectTimeoutMs ?? 10_000 },
    headersTimeout: options.headersTimeoutMs ?? 30_000,
    bodyTimeout: options.bodyTimeoutMs ?? 30_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    connections: options.connectionsPerOrigin ?? 64,
  });
}

/**
 * Throws `config_invalid` unless `url` is https (or http on a loopback
 * host) and carries no credentials. `setting` names where the URL came
 * from, e.g. `CXONE_API_URL`, so the message says what to fix.
 */
export function assertUrlAllowed(url: string, setting: string): URL {
  const problem = urlSchemeProblem(url);
  if (problem !== undefined) {
    throw new CxrecError('config_invalid', `${setting} ${problem}`, { context: { url: safeUrl(url) } });
  }
  const parsed = new URL(url);
  if (parsed.username !== '' || parsed.password !== '') {
    throw new CxrecError('config_invalid', `${setting} must not carry a user name or password`, {
      context: { url: safeUrl(url) },
    });
  }
  return parsed;
}
