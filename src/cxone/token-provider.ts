/**
 * Access tokens by the client-credentials grant (contract §1): fetched
 * once, shared by every caller, renewed a little before they expire, and
 * renewed at once when the platform revokes one early (rotation).
 *
 * Single flight (`single-flight.ts`): however many callers need a token
 * at the same moment, one request goes to the token endpoint and all of
 * them await it.
 */
import { CxrecError, isAbortError } from '../errors.js';
import type { Logger } from '../log.js';
import { noteRetry } from '../retry-tally.js';
import { sleep, systemClock, type Clock } from './clock.js';
import { backoffDelayMs, type ResolvedRetryPolicy } from './retry-policy.js';
import { SingleFlight } from './single-flight.js';
import { missingScopeMessage, type AccessTokenSource, type Transport } from './transport.js';
import { parseWire, tokenResponseSchema } from './wire.js';

/** The scopes cxrec needs: list recordings, and get their download URLs. */
export const requiredScopes = ['recording:read', 'recording:download'] as const;

export interface TokenProviderOptions {
  transport: Transport;
  clientId: string;
  clientSecret: string;
  /** Scopes to request, and to insist on. @default ['recording:read', 'recording:download'] */
  scopes?: readonly string[];
  /**
   * How many refusals (401 invalid_client) in a row the token endpoint may
   * give before the credentials are declared wrong. More than one, because
   * a secret rotated in the admin console takes a moment to reach every
   * CXone node. @default 2
   */
  credentialAttempts?: number;
  retry: ResolvedRetryPolicy;
  logger: Logger;
  /** @default systemClock */
  clock?: Clock;
}

/** A token as granted. */
export interface Grant {
  accessToken: string;
  /** The scopes the token endpoint granted (the requested ones when it did not say). */
  grantedScopes: readonly string[];
  /** On the provider's clock. */
  expiresAt: number;
  /** When to fetch the next one, before `expiresAt`. */
  renewAt: number;
}

export class TokenProvider implements AccessTokenSource {
  readonly clientId: string;
  private readonly clientSecret: string;
  private readonly scopes: readonly string[];
  private readonly clock: Clock;
  private current: Grant | undefined;
  private readonly flight = new SingleFlight<Grant>('token request');
  /** Token fetches so far (tests and `doctor` read it). */
  renewals = 0;

  constructor(private readonly options: TokenProviderOptions) {
    this.clientId = options.clientId;
    this.clientSecret = options.clientSecret;
    this.scopes = options.scopes ?? requiredScopes;
    this.clock = options.clock ?? systemClock;
  }

  async getToken(signal?: AbortSignal): Promise<string> {
    const grant = await this.grant(signal);
    const missing = this.scopes.filter((s) => !grant.grantedScopes.includes(s));
    if (missing.length > 0) {
      throw new CxrecError('scope_missing', missingScopeMessage(missing, this.clientId), {
        context: { clientId: this.clientId, scope: missing.join(' ') },
      });
    }
    return grant.accessToken;
  }

  /** The current grant, fetched if there is none or it is due for renewal. Does not check scopes. */
  grant(signal?: AbortSignal): Promise<Grant> {
    if (this.current && this.clock.now() < this.current.renewAt) return Promise.resolve(this.current);
    return this.joinFetch(signal);
  }

  invalidate(token: string): void {
    if (this.current?.accessToken === token) {
      this.options.logger.debug({ clientId: this.clientId }, 'CXone refused the access token; renewing it');
      this.current = undefined;
    }
  }

  isStale(token: string): boolean {
    return this.current?.accessToken !== token;
  }

  private joinFetch(signal: AbortSignal | undefined): Promise<Grant> {
    return this.flight.join((flightSignal) => this.fetchWithRefusals(flightSignal), signal);
  }

  private async fetchWithRefusals(signal: AbortSignal): Promise<Grant> {
    const attempts = Math.max(1, this.options.credentialAttempts ?? 2);
    for (let refusal = 1; ; refusal++) {
      try {
        return await this.fetchOnce(signal);
      } catch (err) {
        if (
          !(err instanceof CxrecError && err.code === 'auth_failed') ||
          refusal >= attempts ||
          isAbortError(err)
        ) {
          throw err;
        }
        noteRetry('credentials');
        this.options.logger.debug(
          { clientId: this.clientId, refusal },
          'CXone token endpoint refused the credentials; trying again',
        );
        await sleep(Math.max(1000, backoffDelayMs(refusal, this.options.retry)), signal, this.clock);
      }
    }
  }

  private async fetchOnce(signal: AbortSignal): Promise<Grant> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.clientId,
      client_secret: this.clientSecret,
      scope: this.scopes.join(' '),
    });
    // Measured from before the request: the token's lifetime starts at the
    // server somewhere during it, so this errs on the early side.
    const requestedAt = this.clock.now();
    const answer = await this.options.transport.call(
      {
        endpoint: 'token',
        method: 'POST',
        path: '/api/v2/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        auth: false,
        mapError: (status, body) => {
          if (status === 401 || body.error === 'invalid_client') {
            return new CxrecError(
              'auth_failed',
              `CXone refused the API client credentials: check CXONE_CLIENT_ID (${this.clientId}) and CXONE_CLIENT_SECRET`,
              { context: { clientId: this.clientId, status } },
            );
          }
          return undefined;
        },
      },
      signal,
    );
    const token = parseWire(tokenResponseSchema, answer.body, 'token');
    const lifetimeMs = token.expires_in * 1000;
    // Renew 10 % of the lifetime early, at most a minute: with the default
    // hour that is 60 s, enough for every in-flight call to finish with the
    // old token; tests with second-long tokens still get most of theirs.
    const earlyMs = Math.min(60_000, lifetimeMs / 10);
    const grant: Grant = {
      accessToken: token.access_token,
      grantedScopes: token.scope === undefined ? [...this.scopes] : token.scope.split(/\s+/).filter(Boolean),
      expiresAt: requestedAt + lifetimeMs,
      renewAt: requestedAt + lifetimeMs - earlyMs,
    };
    this.current = grant;
    this.renewals++;
    this.options.logger.debug(
      { clientId: this.clientId, expiresInS: token.expires_in, scopes: grant.grantedScopes },
      'CXone access token obtained',
    );
    return grant;
  }
}
