/**
 * Search cursors. The token carries the query and the offset of the next
 * page (signed, so a client cannot edit it), like an offset-based cursor
 * of a real search index: pages are re-evaluated against the index as it
 * is when the page is asked for, so inserts ahead of the position shift
 * items down and one can be listed twice. The server keeps only when each
 * cursor was last used, for the idle expiry and for invalidation.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

import type { SearchQuery } from './search-query.js';

export interface CursorState {
  query: SearchQuery;
  offset: number;
}

export type CursorLookup =
  { ok: true; state: CursorState } | { ok: false; reason: 'unknown' | 'expired' | 'malformed' };

interface CursorPayload {
  id: string;
  query: SearchQuery;
  offset: number;
}

export class CursorStore {
  private readonly secret = randomBytes(32);
  /** Cursor id → last use (real ms). */
  private readonly lastUsed = new Map<string, number>();
  issued = 0;
  expired = 0;
  invalidated = 0;

  constructor(private readonly idleMs: number) {}

  issue(state: CursorState, nowMs: number): string {
    this.sweep(nowMs);
    const payload: CursorPayload = { id: randomUUID(), query: state.query, offset: state.offset };
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    this.lastUsed.set(payload.id, nowMs);
    this.issued++;
    return `${body}.${this.mac(body)}`;
  }

  /** Looks a cursor up; a hit counts as use, so re-sending it to retry a page is fine. */
  resolve(token: string, nowMs: number): CursorLookup {
    const [body, mac, extra] = token.split('.');
    if (body === undefined || mac === undefined || extra !== undefined)
      return { ok: false, reason: 'malformed' };
    const expected = Buffer.from(this.mac(body));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given))
      return { ok: false, reason: 'malformed' };
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as CursorPayload;
    const last = this.lastUsed.get(payload.id);
    if (last === undefined) return { ok: false, reason: 'unknown' };
    if (nowMs - last > this.idleMs) {
      this.lastUsed.delete(payload.id);
      this.expired++;
      return { ok: false, reason: 'expired' };
    }
    this.lastUsed.set(payload.id, nowMs);
    return { ok: true, state: { query: payload.query, offset: payload.offset } };
  }

  /** Drops one cursor (the fault) or all of them (the test hook). */
  invalidate(token?: string): void {
    if (token === undefined) {
      this.invalidated += this.lastUsed.size;
      this.lastUsed.clear();
      return;
    }
    const body = token.split('.')[0] ?? '';
    try {
      const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as CursorPayload;
      if (this.lastUsed.delete(payload.id)) this.invalidated++;
    } catch {
      // A token we cannot read was never ours to drop.
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }

  private sweep(nowMs: number): void {
    if (this.lastUsed.size < 1024) return;
    for (const [id, last] of this.lastUsed) if (nowMs - last > this.idleMs) this.lastUsed.delete(id);
  }
}
