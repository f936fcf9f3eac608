/**
 * The issuer's tokens: JWTs (HS256 under a per-run secret) whose payload
 * carries `tenantId`, `icBUId`, `area`, `iat` and `exp` as CXone's do. The
 * issuer also remembers each token's `jti`, so a revocation (test hook or
 * fault) takes effect before `exp`.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenUse = 'access' | 'refresh' | 'id';

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  /** Which access key logged in: the API host reads the user's permissions from it. */
  accessKeyId: string;
  tenantId: string;
  icBUId: number;
  area: string;
  iat: number;
  exp: number;
  jti: string;
  use: TokenUse;
}

interface Live {
  accessKeyId: string;
  applicationId: string;
  expiresAtMs: number;
}

export interface IssuedTokens {
  accessToken: string;
  refreshToken: string;
  idToken: string;
  /** Real seconds, rounded up. */
  expiresIn: number;
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export class PlatformTokens {
  private readonly secret = randomBytes(32);
  private readonly access = new Map<string, Live>();
  private readonly refresh = new Map<string, Live>();
  issued = 0;
  refreshed = 0;
  revoked = 0;
  rejected = 0;

  constructor(
    private readonly tenant: { tenantId: string; businessUnitId: number; area: string },
    private readonly accessTtlRealMs: number,
    private readonly refreshTtlRealMs: number,
  ) {}

  private sign(claims: TokenClaims): string {
    const head = `${b64({ alg: 'HS256', typ: 'JWT', kid: 'sim-1' })}.${b64(claims)}`;
    return `${head}.${createHmac('sha256', this.secret).update(head).digest('base64url')}`;
  }

  /** The claims of a token this issuer signed, or undefined for anything else. */
  private verify(token: string): TokenClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [h = '', p = '', s = ''] = parts;
    const expected = Buffer.from(createHmac('sha256', this.secret).update(`${h}.${p}`).digest('base64url'));
    const given = Buffer.from(s);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return undefined;
    }
  }

  issue(issuer: string, accessKeyId: string, applicationId: string, nowMs: number): IssuedTokens {
    if (this.access.size >= 4096)
      for (const [k, v] of this.access) if (v.expiresAtMs <= nowMs) this.access.delete(k);
    const iat = Math.floor(nowMs / 1000);
    const base = {
      iss: issuer,
      sub: `user:${accessKeyId}`,
      aud: applicationId,
      accessKeyId,
      tenantId: this.tenant.tenantId,
      icBUId: this.tenant.businessUnitId,
      area: this.tenant.area,
      iat,
    };
    const accessExpMs = nowMs + this.accessTtlRealMs;
    const refreshExpMs = nowMs + this.refreshTtlRealMs;
    const accessJti = randomBytes(12).toString('base64url');
    const refreshJti = randomBytes(12).toString('base64url');
    this.access.set(accessJti, { accessKeyId, applicationId, expiresAtMs: accessExpMs });
    this.refresh.set(refreshJti, { accessKeyId, applicationId, expiresAtMs: refreshExpMs });
    this.issued++;
    const exp = Math.ceil(accessExpMs / 1000);
    return {
      accessToken: this.sign({ ...base, exp, jti: accessJti, use: 'access' }),
      refreshToken: this.sign({
        ...base,
        exp: Math.ceil(refreshExpMs / 1000),
        jti: refreshJti,
        use: 'refresh',
      }),
      idToken: this.sign({ ...base, exp, jti: randomBytes(12).toString('base64url'), use: 'id' }),
      expiresIn: Math.max(1, Math.ceil(this.accessTtlRealMs / 1000)),
    };
  }

  /** The access key behind a live access token, or undefined (expired, revoked, forged). */
  checkAccess(token: string, nowMs: number): { accessKeyId: string; jti: string } | undefined {
    const claims = this.verify(token);
    const live = claims?.use === 'access' ? this.access.get(claims.jti) : undefined;
    if (!claims || !live || nowMs >= live.expiresAtMs) {
      this.rejected++;
      return undefined;
    }
    return { accessKeyId: live.accessKeyId, jti: claims.jti };
  }

  /** The login a live refresh token stands for, or undefined. */
  checkRefresh(token: string, applicationId: string, nowMs: number): { accessKeyId: string } | undefined {
    const claims = this.verify(token);
    const live = claims?.use === 'refresh' ? this.refresh.get(claims.jti) : undefined;
    if (!claims || !live || nowMs >= live.expiresAtMs || live.applicationId !== applicationId)
      return undefined;
    this.refreshed++;
    return { accessKeyId: live.accessKeyId };
  }

  revokeAccess(jti: string): void {
    if (this.access.delete(jti)) this.revoked++;
  }

  /** Revokes every access token issued so far (and the refresh tokens too when asked). */
  revokeAll(options: { refreshTokens?: boolean } = {}): number {
    const n = this.access.size;
    this.access.clear();
    this.revoked += n;
    if (options.refreshTokens === true) this.refresh.clear();
    return n;
  }
}
