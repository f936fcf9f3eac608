/**
 * Access tokens of the platform dialect (contract §1): the password grant
 * with the API user's access key at the issuer's token endpoint (found in
 * its `/.well-known/openid-configuration`), the application's id and
 * secret as HTTP Basic. Shared by every caller (single flight), renewed a
 * little before expiry with the refresh token, or by a new login when the
 * refresh is refused, and renewed at once when the API refuses a token
 * (401, expiry or revocation).
 *
 * Logins and the `.well-known` documents count against neither budget
 * (§5): they go through an unmetered limiter.
 */
import { CxrecError, isAbortError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { safeUrl } from '../../redact.js';
import { systemClock, type Clock } from '../clock.js';
import { assertUrlAllowed } from '../http.js';
import type { RateLimiter } from '../rate-limiter.js';
import { SingleFlight } from '../single-flight.js';
import { errorDescription, type AccessTokenSource, type Transport } from '../transport.js';
import { parseWire } from '../wire.js';
import { basicAuthorization, formBody } from './form-encoding.js';
import { jwtLifetimeSeconds, tenantIdOf } from './jwt.js';
import type { PlatformEndpoint } from './endpoints.js';
import { openIdConfigurationSchema, platformTokenSchema } from './wire.js';

export interface AccessKeyLoginOptions {
  transport: Transport<PlatformEndpoint>;
  /** CXONE_AUTH_URL, already checked against the URL policy. */
  authUrl: URL;
  accessKeyId: string;
  /** Never logged, never in a message. */
  accessKeySecret: string;
  clientId: string;
  /** Never logged, never in a message. */
  clientSecret: string;
  /** A limiter that counts nothing: logins spend neither budget. */
  unmetered: RateLimiter;
  logger: Logger;
  /** @default systemClock */
  clock?: Clock;
}

/** A login's result. */
export interface Session {
  accessToken: string;
  /** From the access token's payload. */
  tenantId: string;
  /** On the login's clock. */
  expiresAt: number;
  /** When to renew, before `expiresAt`. */
  renewAt: number;
}

export class AccessKeyLogin implements AccessTokenSource {
  private readonly clock: Clock;
  private readonly flight = new SingleFlight<Session>('CXone login');
  private current: Session | undefined;
  /** Kept past `invalidate`: a refused access token may still be renewed with it. */
  private refreshToken: string | undefined;
  private tokenEndpoint: URL | undefined;
  /** Password-grant logins so far. */
  logins = 0;
  /** Refresh-token renewals so far. */
  refreshes = 0;

  constructor(private readonly options: AccessKeyLoginOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** The tenant of the last login, once there was one. */
  get tenantId(): string | undefined {
    return this.current?.tenantId;
  }

  async getToken(signal?: AbortSignal): Promise<string> {
    return (await this.session(signal)).accessToken;
  }

  /** The current session, renewed first when due. */
  session(signal?: AbortSignal): Promise<Session> {
    if (this.current && this.clock.now() < this.current.renewAt) return Promise.resolve(this.current);
    return this.flight.join((flightSignal) => this.renew(flightSignal), signal);
  }

  invalidate(token: string): void {
    if (this.current?.accessToken === token) {
      this.options.logger.debug('CXone refused the access token; renewing it');
      this.current = undefined;
    }
  }

  isStale(token: string): boolean {
    return this.current?.accessToken !== token;
  }

  private async renew(signal: AbortSignal): Promise<Session> {
    const refreshToken = this.refreshToken;
    if (refreshToken !== undefined) {
      try {
        const session = await this.grant(
          { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: this.options.clientId },
          signal,
        );
        this.refreshes++;
        return session;
      } catch (err) {
        if (isAbortError(err)) throw err;
        // An expired or revoked refresh token; the access key still works.
        this.refreshToken = undefined;
        this.options.logger.info({ err }, 'CXone refused the refresh token; logging in again');
      }
    }
    const session = await this.grant(
      {
        grant_type: 'password',
        username: this.options.accessKeyId,
        password: this.options.accessKeySecret,
      },
      signal,
    );
    this.logins++;
    return session;
  }

  private async grant(fields: Record<string, string>, signal: AbortSignal): Promise<Session> {
    const endpoint = await this.findTokenEndpoint(signal);
    const grantType = fields.grant_type;
    const { accessKeyId, clientId } = this.options;
    // Measured from before the request: errs on the early side.
    const requestedAt = this.clock.now();
    const answer = await this.issuerCall(
      {
        endpoint: 'token',
        method: 'POST',
        path: endpoint.href,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basicAuthorization(clientId, this.options.clientSecret),
        },
        body: formBody(fields),
        auth: false,
        context: { grantType },
        mapError: (status, body, headers) => {
          const description = errorDescription(body, headers);
          const why = description === undefined ? '' : ` (${description})`;
          if (status === 401 || body.error === 'invalid_client') {
            return new CxrecError(
              'auth_failed',
              `CXone's issuer refused the application${why}: check CXONE_CLIENT_ID (${clientId}) and CXONE_CLIENT_SECRET`,
              { context: { clientId, status } },
            );
          }
          if (body.error === 'invalid_grant' && grantType === 'password') {
            return new CxrecError(
              'auth_failed',
              `CXone's issuer refused the access key${why}: check CXONE_ACCESS_KEY_ID (${accessKeyId}) and ` +
                'CXONE_ACCESS_KEY_SECRET (a wrong, deactivated or deleted key, or a key of another issuer: CXONE_AUTH_URL)',
              { context: { accessKeyId, status } },
            );
          }
          return undefined;
        },
      },
      signal,
    );
    const token = parseWire(platformTokenSchema, answer.body, 'token');
    const tenantId = tenantIdOf(token.access_token);
    const lifetimeS = token.expires_in ?? jwtLifetimeSeconds(token.access_token);
    if (lifetimeS === undefined) {
      throw new CxrecError('invalid_response', 'token answered without expires_in or exp/iat claims', {
        context: { endpoint: 'token', field: 'expires_in' },
      });
    }
    const lifetimeMs = lifetimeS * 1000;
    // As for the recording API: 10 % early, at most a minute.
    const earlyMs = Math.min(60_000, lifetimeMs / 10);
    const session: Session = {
      accessToken: token.access_token,
      tenantId,
      expiresAt: requestedAt + lifetimeMs,
      renewAt: requestedAt + lifetimeMs - earlyMs,
    };
    if (token.refresh_token) this.refreshToken = token.refresh_token;
    this.current = session;
    this.options.logger.debug({ grantType, tenantId, expiresInS: lifetimeS }, 'CXone access token obtained');
    return session;
  }

  /** The token endpoint the issuer announces, fetched once per process. */
  private async findTokenEndpoint(signal: AbortSignal): Promise<URL> {
    if (this.tokenEndpoint) return this.tokenEndpoint;
    const answer = await this.issuerCall(
      {
        endpoint: 'openid_configuration',
        method: 'GET',
        path: underBase(this.options.authUrl, '.well-known/openid-configuration').href,
        auth: false,
        mapError: (status) =>
          status === 404
            ? new CxrecError(
                'unreachable',
                `${safeUrl(this.options.authUrl)} is not a CXone issuer (no openid-configuration): check CXONE_AUTH_URL`,
                { retryable: false, context: { status } },
              )
            : undefined,
      },
      signal,
    );
    const config = parseWire(openIdConfigurationSchema, answer.body, 'openid_configuration');
    this.tokenEndpoint = assertUrlAllowed(
      config.token_endpoint,
      'the token_endpoint announced by CXONE_AUTH_URL',
    );
    return this.tokenEndpoint;
  }

  /** A call to the issuer; no answer at all becomes an exit-3 error naming CXONE_AUTH_URL. */
  private async issuerCall(
    spec: Parameters<Transport<PlatformEndpoint>['call']>[0],
    signal: AbortSignal,
  ): ReturnType<Transport<PlatformEndpoint>['call']> {
    try {
      return await this.options.transport.call({ ...spec, limiter: this.options.unmetered }, signal);
    } catch (err) {
      throw issuerError(err, this.options.authUrl);
    }
  }
}

/** `unreachable` from the issuer, reworded to name the setting to check. */
export function issuerError(err: unknown, authUrl: URL): unknown {
  if (err instanceof CxrecError && err.code === 'unreachable' && err.retryable) {
    return new CxrecError(
      'unreachable',
      `cannot reach the CXone issuer ${safeUrl(authUrl)}: check CXONE_AUTH_URL and the network`,
      { cause: err, retryable: false, context: err.context },
    );
  }
  return err;
}

/** `relative` resolved below `base`, keeping any path `base` has (`https://h/x` + `y` → `https://h/x/y`). */
export function underBase(base: URL, relative: string): URL {
  return new URL(relative, base.href.endsWith('/') ? base : `${base.href}/`);
}
