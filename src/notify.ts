/**
 * `CXREC_NOTIFY_URL`: a JSON POST when an `export` ends and, from `run`,
 * when recordings end `failed` (batched, at most one a minute). The body
 * has `text` (what Slack and Teams incoming webhooks show) plus structured
 * fields for anything else that reads it.
 *
 * A notification never holds up the work: it is sent in the background,
 * retried with backoff, and `settle(ms)` waits for it a bounded time only.
 * The URL itself may carry the webhook's token, so only its scheme and host
 * are ever logged; the body is scrubbed like every log record.
 */
import { hostname } from 'node:os';

import { request } from 'undici';

import { sleep } from './cxone/clock.js';
import { createHttpAgent } from './cxone/http.js';
import { backoffDelayMs } from './cxone/retry-policy.js';
import { isAbortError } from './errors.js';
import type { Logger } from './log.js';
import { scrubValue } from './redact.js';
import { groupReasons } from './reason-groups.js';

export interface Notification {
  /** One or two lines for a person (Slack/Teams show this). */
  text: string;
  event: 'export_finished' | 'recordings_failed';
  host: string;
  [field: string]: unknown;
}

export interface NotifierOptions {
  url: string;
  log: Logger;
  /** CXREC_BACKOFF_SECONDS: the base of the backoff between attempts. */
  backoffSeconds: number;
  /** Attempts per notification. @default 5 */
  attempts?: number;
  /** How long one attempt may take. @default 5000 */
  attemptTimeoutMs?: number;
}

export interface Notifier {
  /** Sends in the background; returns at once. */
  send(notification: Notification): void;
  /** Waits for the sends in flight, at most `ms`, then gives up on them and frees the connections. */
  settle(ms: number): Promise<void>;
}

/** `https://hooks.example.com`: what a log may say about the URL (its path can be the webhook's secret). */
export function notifyTarget(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const { url, log } = options;
  const target = notifyTarget(url);
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 5000;
  const agent = createHttpAgent({
    connectTimeoutMs: attemptTimeoutMs,
    headersTimeoutMs: attemptTimeoutMs,
    bodyTimeoutMs: attemptTimeoutMs,
    connectionsPerOrigin: 2,
  });
  const stop = new AbortController();
  const inFlight = new Set<Promise<void>>();
  const backoff = { baseMs: options.backoffSeconds * 1000, capMs: 60_000, random: Math.random };
  const attempts = Math.max(1, options.attempts ?? 5);

  async function deliver(body: string, event: string): Promise<void> {
    let last = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const res = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          dispatcher: agent,
          signal: AbortSignal.any([stop.signal, AbortSignal.timeout(attemptTimeoutMs)]),
        });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          log.debug({ target, event, attempt }, 'notification sent');
          return;
        }
        last = `HTTP ${res.statusCode}`;
        // A refusal other than "later" will not change by asking again.
        const transient = res.statusCode >= 500 || res.statusCode === 408 || res.statusCode === 429;
        if (!transient) break;
      } catch (err) {
        if (stop.signal.aborted) {
          last = 'no answer before the command ended';
          break;
        }
        last = isAbortError(err) ? `no answer within ${attemptTimeoutMs} ms` : errorCode(err);
      }
      if (attempt < attempts) {
        log.debug({ target, event, attempt, problem: last }, 'notification not delivered; trying again');
        try {
          await sleep(Math.max(100, backoffDelayMs(attempt, backoff)), stop.signal);
        } catch {
          last = 'no answer before the command ended';
          break;
        }
      }
    }
    log.warn({ target, event, problem: last }, 'notification not delivered (CXREC_NOTIFY_URL)');
  }

  return {
    send(notification) {
      const body = JSON.stringify(scrubValue(notification));
      const p = deliver(body, notification.event).finally(() => inFlight.delete(p));
      inFlight.add(p);
    },
    async settle(ms) {
      const all = Promise.allSettled([...inFlight]);
      const timer = new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
      await Promise.race([all, timer]);
      stop.abort();
      await all;
      await agent.destroy();
    },
  };
}

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string') return e.code;
  return typeof e.message === 'string' ? e.message : 'request failed';
}

/** Per-state counts and grouped reasons of settled rows. */
export function countsFields(byState: Readonly<Record<string, Readonly<Record<string, number>>>>): {
  counts: Record<string, number>;
  reasons: Record<string, Record<string, number>>;
} {
  const counts: Record<string, number> = {};
  const reasons: Record<string, Record<string, number>> = {};
  for (const [state, byReason] of Object.entries(byState)) {
    counts[state] = Object.values(byReason).reduce((a, b) => a + b, 0);
    reasons[state] = groupReasons(byReason);
  }
  return { counts, reasons };
}

export interface FailureNoticeOptions {
  /** At most one notification per this long. @default 60000 */
  minIntervalMs?: number;
  /** How long after the first failure of a batch it is sent, so failures arriving together go together. @default 5000 */
  gatherMs?: number;
  now?: () => number;
}

/**
 * `run`: failed recordings gathered into one notification at most every
 * `minIntervalMs`. `stop()` sends what is still gathered.
 */
export class FailureNotices {
  #pending: { recordingId: string; channel: string; reason: string }[] = [];
  #lastSent = -Infinity;
  #timer: NodeJS.Timeout | undefined;
  readonly #minIntervalMs: number;
  readonly #gatherMs: number;
  readonly #now: () => number;

  constructor(
    private readonly notifier: Notifier,
    options: FailureNoticeOptions = {},
  ) {
    this.#minIntervalMs = options.minIntervalMs ?? 60_000;
    this.#gatherMs = options.gatherMs ?? 5000;
    this.#now = options.now ?? (() => Date.now());
  }

  failed(job: { recordingId: string; channel: string }, reason: string): void {
    this.#pending.push({ recordingId: job.recordingId, channel: job.channel, reason });
    if (this.#timer) return;
    const at = Math.max(this.#now() + this.#gatherMs, this.#lastSent + this.#minIntervalMs);
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, at - this.#now()));
    this.#timer.unref();
  }

  /** Sends what is gathered now (at shutdown), whatever the interval. */
  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#flush();
  }

  #flush(): void {
    this.#timer = undefined;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    this.#lastSent = this.#now();
    const byReason: Record<string, number> = {};
    for (const f of batch) byReason[f.reason] = (byReason[f.reason] ?? 0) + 1;
    const reasons = groupReasons(byReason);
    const top = Object.entries(reasons)
      .slice(0, 3)
      .map(([r, n]) => `${r} (${n})`)
      .join('; ');
    const host = hostname();
    this.notifier.send({
      text: `cxrec run on ${host}: ${batch.length} recording${batch.length === 1 ? '' : 's'} ended failed: ${top}`,
      event: 'recordings_failed',
      host,
      failed: batch.length,
      reasons,
      recordings: batch.slice(0, 20).map(({ recordingId, channel }) => ({ recordingId, channel })),
    });
  }
}
