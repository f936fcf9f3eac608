/**
 * The tenant's sliding-window limit on `/api/v2/*`. Only accepted requests
 * enter the window (contract §6: refused requests do not count), and the
 * window is in real seconds, never scaled, because exporters configure
 * their own limiter in real requests per minute.
 */
import type { RateLimitOptions } from './options.js';

export type Admission = { ok: true } | { ok: false; retryAfterSeconds: number };

export class SlidingWindowLimiter {
  /** Arrival times (ms) of accepted requests still inside the window, oldest first. */
  private accepted: number[] = [];
  private burstUntilMs = 0;

  constructor(private limit: RateLimitOptions | false) {}

  get current(): RateLimitOptions | false {
    return this.limit;
  }

  setLimit(limit: RateLimitOptions | false): void {
    this.limit = limit;
    this.accepted = [];
  }

  /** A fault: refuse everything until `untilMs`, as the platform does under a shift-change burst. */
  startBurst(untilMs: number): void {
    this.burstUntilMs = Math.max(this.burstUntilMs, untilMs);
  }

  inBurst(nowMs: number): boolean {
    return nowMs < this.burstUntilMs;
  }

  admit(nowMs: number): Admission {
    if (nowMs < this.burstUntilMs) {
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((this.burstUntilMs - nowMs) / 1000)) };
    }
    if (!this.limit) return { ok: true };
    const windowMs = this.limit.windowSeconds * 1000;
    while (this.accepted.length > 0 && (this.accepted[0] ?? 0) <= nowMs - windowMs) this.accepted.shift();
    if (this.accepted.length >= this.limit.requests) {
      // The oldest accepted request leaves the window at oldest + window.
      const oldest = this.accepted[this.accepted.length - this.limit.requests] ?? nowMs;
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + windowMs - nowMs) / 1000)) };
    }
    this.accepted.push(nowMs);
    return { ok: true };
  }
}

/**
 * The most events seen in any sliding window of `windowMs`: the maximum is
 * always reached by a window that ends at an event, so checking at each
 * arrival is exact and keeps only one window of timestamps.
 */
export class WindowPeak {
  private times: number[] = [];
  peak = 0;

  constructor(private readonly windowMs: number) {}

  record(nowMs: number): void {
    this.times.push(nowMs);
    while (this.times.length > 0 && (this.times[0] ?? 0) <= nowMs - this.windowMs) this.times.shift();
    if (this.times.length > this.peak) this.peak = this.times.length;
  }

  reset(): void {
    this.times = [];
    this.peak = 0;
  }
}
