/**
 * A small issuer and API host that follow `cxone-platform-api.md`, for
 * the platform client's integration tests (not a test file itself). Two
 * real HTTP servers on port 0, as the contract puts the API on another
 * host than the issuer. Each test sets the state it needs; every request
 * is written down.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  host: 'issuer' | 'api';
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  status: number;
}

export interface PlatformServerOptions {
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  accessKeyId?: string;
  accessKeySecret?: string;
  /** Lifetime of issued tokens. @default 3600 */
  expiresIn?: number;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export class PlatformTestServer {
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  expiresIn: number;
  /** How token errors spell their description. */
  errorSpelling: 'error_description' | 'errorDescription' = 'error_description';
  /** Contacts as served, in listing order (any spelling, any value types). */
  contacts: Record<string, unknown>[] = [];
  /** Playback answers by `acd-call-id`; absent → 404. */
  readonly playback = new Map<string, unknown>();
  reportingPermission = true;
  playbackPermission = true;
  refuseRefresh = false;
  /** Full pages lose their last row, as a page may be short and still not the last. */
  shortPages = false;
  /** `_links.next` points at another origin. */
  foreignNextLinks = false;
  /** `contacts/completed` answers 400 with an empty body and this `icStatusDescription`. */
  listing400: string | undefined;
  /** Tenants the issuer's discovery knows; the default tenant is added at start. */
  readonly knownTenants = new Set<string>();
  /** Accepted media-playback requests per window; over it, 429 without Retry-After. */
  playbackLimit: { requests: number; windowMs: number } | undefined;
  readonly requests: RecordedRequest[] = [];
  private readonly validTokens = new Set<string>();
  private readonly refreshTokens = new Set<string>();
  private readonly playbackArrivals: number[] = [];
  private issued = 0;
  private issuerServer: Server | undefined;
  private apiServer: Server | undefined;
  issuerUrl = '';
  apiUrl = '';

  constructor(options: PlatformServerOptions = {}) {
    this.tenantId = options.tenantId ?? '11eb7c4e-0a6f-4bd0-9d53-0242ac110002';
    this.clientId = options.clientId ?? 'app-7f3a';
    this.clientSecret = options.clientSecret ?? 'cl+ent/secret==';
    this.accessKeyId = options.accessKeyId ?? 'AKIA-PLATFORM-1';
    // About 50 characters with +, / and =, as NICE's access key secrets are.
    this.accessKeySecret = options.accessKeySecret ?? 'Zm9vYmFy+c2VjcmV0/a2V5+d2l0aC9zbGFzaA==/x+y=z+0123456';
    this.expiresIn = options.expiresIn ?? 3600;
  }

  async start(): Promise<this> {
    this.issuerServer = createServer((req, res) => void this.serve('issuer', req, res));
    this.apiServer = createServer((req, res) => void this.serve('api', req, res));
    for (const server of [this.issuerServer, this.apiServer]) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    this.issuerUrl = `http://127.0.0.1:${(this.issuerServer.address() as AddressInfo).port}`;
    this.apiUrl = `http://127.0.0.1:${(this.apiServer.address() as AddressInfo).port}`;
    this.knownTenants.add(this.tenantId);
    return this;
  }

  async stop(): Promise<void> {
    for (const server of [this.issuerServer, this.apiServer]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Every access token issued so far is refused from now on (expiry or revocation). */
  revokeTokens(): void {
    this.validTokens.clear();
  }

  /** Requests to `path` (a suffix), optionally with one status. */
  count(path: string, status?: number): number {
    return this.requests.filter((r) => r.path.endsWith(path) && (status === undefined || r.status === status))
      .length;
  }

  grants(type: string): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.path === '/auth/token' && new URLSearchParams(r.body).get('grant_type') === type,
    );
  }

  private async serve(host: 'issuer' | 'api', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const record: RecordedRequest = {
      host,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      status: 0,
    };
    this.requests.push(record);
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, {
        ...(body === undefined || typeof body === 'string' ? {} : { 'content-type': 'application/json' }),
        ...headers,
      });
      res.end(text);
    };
    if (host === 'issuer') this.issuer(record, url, send);
    else this.api(record, url, send);
  }

  private issuer(record: RecordedRequest, url: URL, send: Send): void {
    if (record.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return send(200, {
        issuer: this.issuerUrl,
        token_endpoint: `${this.issuerUrl}/auth/token`,
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      });
    }
    if (record.method === 'GET' && url.pathname === '/.well-known/cxone-configuration') {
      const tenantId = url.searchParams.get('tenantId') ?? '';
      if (!this.knownTenants.has(tenantId)) return send(404, { message: 'tenant not found' });
      return send(200, {
        private: false,
        area: 'na1',
        cluster: 'B32',
        domain: 'niceincontact.com',
        api_endpoint: this.apiUrl,
        auth_endpoint: this.issuerUrl,
        tenantId,
      });
    }
    if (record.method === 'POST' && url.pathname === '/auth/token') return this.token(record, send);
    send(404, { message: 'not found' });
  }

  private tokenError(send: Send, status: number, error: string, description: string): void {
    send(status, { error, [this.errorSpelling]: description });
  }

  private token(record: RecordedRequest, send: Send): void {
    const form = new URLSearchParams(record.body);
    const basic = /^Basic (.+)$/.exec(record.headers.authorization ?? '')?.[1];
    const [id, ...rest] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':') : [];
    if (id !== this.clientId || rest.join(':') !== this.clientSecret) {
      return this.tokenError(send, 401, 'invalid_client', 'Client authentication failed');
    }
    const grant = form.get('grant_type');
    if (grant === 'password') {
      if (form.get('username') !== this.accessKeyId || form.get('password') !== this.accessKeySecret) {
        return this.tokenError(send, 400, 'invalid_grant', 'The access key is invalid or inactive');
      }
    } else if (grant === 'refresh_token') {
      const refresh = form.get('refresh_token') ?? '';
      if (this.refuseRefresh || !this.refreshTokens.has(refresh)) {
        return this.tokenError(send, 400, 'invalid_grant', 'The refresh token is invalid or expired');
      }
      this.refreshTokens.delete(refresh);
    } else {
      return this.tokenError(send, 400, 'unsupported_grant_type', 'unsupported grant');
    }
    this.issued++;
    const iat = Math.floor(Date.now() / 1000);
    const claims = { tenantId: this.tenantId, icBUId: 4600012, area: 'na1', iat, exp: iat + this.expiresIn };
    const jwt = (kind: string): string =>
      `${base64url({ alg: 'RS256', typ: 'JWT' })}.${base64url({ ...claims, kind, n: this.issued })}.c2lnbmF0dXJl`;
    const access = jwt('access');
    const refresh = jwt('refresh');
    this.validTokens.add(access);
    this.refreshTokens.add(refresh);
    send(200, {
      access_token: access,
      token_type: 'Bearer',
      expires_in: this.expiresIn,
      refresh_token: refresh,
      id_token: jwt('id'),
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    });
  }

  private api(record: RecordedRequest, url: URL, send: Send): void {
    const token = /^Bearer (.+)$/.exec(record.headers.authorization ?? '')?.[1];
    // An expired or revoked token: 401 with a body that is not JSON.
    if (token === undefined || !this.validTokens.has(token)) return send(401, 'Unauthorized');
    if (!(record.headers.accept ?? '').includes('application/json')) {
      return send(406, { message: 'No known way to render data' });
    }
    if (url.pathname.endsWith('/contacts/completed')) return this.completed(url, send);
    if (url.pathname === '/media-playback/v1/contacts') return this.mediaPlayback(url, send);
    send(404, { message: 'not found' });
  }

  private completed(url: URL, send: Send): void {
    if (!this.reportingPermission) return send(403, { internalCode: 403, message: 'Forbidden' });
    if (this.listing400 !== undefined) return send(400, undefined, { icStatusDescription: this.listing400 });
    for (const name of ['startDate', 'endDate', 'updatedSince']) {
      const value = url.searchParams.get(name);
      if (value !== null && !value.endsWith('Z')) {
        return send(400, undefined, { icStatusDescription: `Invalid ${name}` });
      }
    }
    const top = Number(url.searchParams.get('top') ?? 10000);
    const skip = Number(url.searchParams.get('skip') ?? 0);
    const all = this.contacts;
    let page = all.slice(skip, skip + top);
    if (page.length === 0) return send(204);
    if (this.shortPages && page.length === top) page = page.slice(0, -1);
    const nextSkip = skip + top;
    const origin = this.foreignNextLinks ? 'http://127.0.0.2:9' : this.apiUrl;
    const next = new URL(`${url.pathname}${url.search}`, origin);
    next.searchParams.set('skip', String(nextSkip));
    send(200, {
      totalRecords: all.length,
      businessUnitId: 4600012,
      lastPollTime: '2024-01-15T12:00:00.000Z',
      _links: {
        self: `${this.apiUrl}${url.pathname}${url.search}`,
        next: nextSkip < all.length ? next.href : null,
      },
      completedContacts: page,
    });
  }

  private mediaPlayback(url: URL, send: Send): void {
    if (!this.playbackPermission) return send(403, { internalCode: 1403, message: 'Forbidden' });
    if (this.playbackLimit) {
      const now = Date.now();
      const recent = this.playbackArrivals.filter((t) => t > now - (this.playbackLimit?.windowMs ?? 0));
      this.playbackArrivals.splice(0, this.playbackArrivals.length, ...recent);
      if (recent.length >= this.playbackLimit.requests) {
        return send(429, { message: 'Too Many Requests', route: '/media-playback/v1/contacts' });
      }
      this.playbackArrivals.push(now);
    }
    const body = this.playback.get(url.searchParams.get('acd-call-id') ?? '');
    if (body === undefined) return send(404, { internalCode: 404, message: 'Interaction Not Found' });
    send(200, body);
  }
}

type Send = (status: number, body?: unknown, headers?: Record<string, string>) => void;

/** A contact as v30.0 lists it. */
export function contact(n: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const start = new Date(Date.UTC(2024, 0, 15, 10, 0, 0) + n * 60_000).toISOString();
  return {
    contactId: 500000000 + n,
    masterContactId: 500000000 + n,
    contactStartDate: start,
    lastUpdateTime: start,
    mediaTypeId: 4,
    mediaTypeName: 'Call',
    agentId: 1001,
    firstName: 'Ada',
    lastName: 'Lovelace',
    skillId: 77,
    skillName: 'Billing',
    teamId: 9,
    campaignId: 3,
    fromAddress: '5551230000',
    toAddress: '5559870000',
    isOutbound: false,
    totalDurationSeconds: 180,
    abandoned: false,
    isLogged: true,
    endReason: 'Contact Hung Up',
    ...overrides,
  };
}

/** A playback answer with the given voice interactions (`[startTime, url]`). */
export function playbackAnswer(
  interactions: { startTime: string; url: string; mediaType?: string }[],
): unknown {
  return {
    contactId: 'b1a7e2d0-1111-4c3c-9a8e-000000000001',
    acdcontactId: '500000001',
    elevatedInteraction: false,
    interactions: interactions.map((i) => ({
      mediaType: i.mediaType ?? 'voice-only',
      channelType: 'PHONE_CALL',
      startTime: i.startTime,
      endTime: i.startTime,
      data: {
        fileToPlayUrl: i.url,
        startTime: i.startTime,
        endTime: i.startTime,
        participantDataList: [],
        segmentsDataList: [],
      },
    })),
  };
}
