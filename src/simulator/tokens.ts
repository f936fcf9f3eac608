/**
 * Access tokens of the client-credentials grant: opaque random strings the
 * tenant remembers with their client, granted scopes and expiry. Revocation
 * (a rotation fault, or the test hook) drops them before they expire.
 */
import { randomBytes } from 'node:crypto';

export interface IssuedToken {
  clientId: string;
  scopes: readonly string[];
  expiresAtMs: number;
}

export type TokenCheck = { ok: true; token: IssuedToken } | { ok: false };

export class TokenStore {
  private readonly tokens = new Map<string, IssuedToken>();

  constructor(private readonly ttlMs: number) {}

  issue(
    clientId: string,
    scopes: readonly string[],
    nowMs: number,
  ): { accessToken: string; expiresIn: number } {
    if (this.tokens.size >= 1024)
      for (const [t, v] of this.tokens) if (v.expiresAtMs <= nowMs) this.tokens.delete(t);
    const accessToken = `sim.${randomBytes(24).toString('base64url')}`;
    this.tokens.set(accessToken, { clientId, scopes, expiresAtMs: nowMs + this.ttlMs });
    // expires_in reports the real lifetime, rounded up: a client that renews early still meets expiry only via 401.
    return { accessToken, expiresIn: Math.max(1, Math.ceil(this.ttlMs / 1000)) };
  }

  check(accessToken: string, nowMs: number): TokenCheck {
    const token = this.tokens.get(accessToken);
    if (!token) return { ok: false };
    if (nowMs >= token.expiresAtMs) {
      this.tokens.delete(accessToken);
      return { ok: false };
    }
    return { ok: true, token };
  }

  revoke(accessToken: string): boolean {
    return this.tokens.delete(accessToken);
  }

  revokeAll(): number {
    const n = this.tokens.size;
    this.tokens.clear();
    return n;
  }
}
