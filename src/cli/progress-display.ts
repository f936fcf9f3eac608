/**
 * How long work shows itself: on a terminal, one status line redrawn in
 * place (settled / total, stored, bytes, rate, ETA, waiting for processing,
 * API budget use, retries; log lines print above it, `terminal.ts`);
 * otherwise a JSON line every `intervalMs`, so a log collector sees the run
 * move. Both go to stderr: stdout carries the command's result.
 */
import type { ExportProgress } from '../pipeline/export-job.js';
import type { StatusLine } from '../terminal.js';

/** What the command knows beside the export's own progress. */
export interface ProgressExtras {
  /** Transient faults absorbed by a retry so far (`retry-tally.ts`). */
  retries: number;
  /** API calls sent so far, every attempt (what the tenant's budget counts). */
  apiCalls: number;
  /** CXREC_RATE_LIMIT. */
  apiLimitPerMinute: number;
}

export interface ProgressOptions {
  /** On a terminal: the status line to redraw. Without one, JSON lines go to `stream`. */
  status?: StatusLine | undefined;
  /** @default stderr */
  stream?: NodeJS.WritableStream;
  /** JSON lines at most this often. @default 10000 */
  intervalMs?: number;
  extras?: () => ProgressExtras;
  now?: () => number;
}

export interface ProgressDisplay {
  update(progress: ExportProgress): void;
  done(): void;
}

/** Progress plus the API calls of the last minute, as shown. */
export interface ProgressView extends ExportProgress {
  retries?: number;
  apiCallsLastMinute?: number;
  apiLimitPerMinute?: number;
}

export function progressDisplay(options: ProgressOptions = {}): ProgressDisplay {
  const now = options.now ?? (() => Date.now());
  const pace = new CallPace();
  const view = (p: ExportProgress): ProgressView => {
    const extras = options.extras?.();
    if (!extras) return p;
    return {
      ...p,
      retries: extras.retries,
      apiCallsLastMinute: pace.sample(now(), extras.apiCalls),
      apiLimitPerMinute: extras.apiLimitPerMinute,
    };
  };
  const { status } = options;
  if (status) {
    return {
      update(p) {
        status.set(formatLine(view(p)));
      },
      done() {
        status.end();
      },
    };
  }
  const stream = options.stream ?? process.stderr;
  const intervalMs = options.intervalMs ?? 10_000;
  let last = -Infinity;
  return {
    update(p) {
      const at = now();
      const v = view(p);
      if (at - last < intervalMs && p.phase !== 'done') return;
      last = at;
      stream.write(
        `${JSON.stringify({ progress: { ...v, bytesPerSecond: Math.round(rate(p)) }, time: new Date(at).toISOString() })}\n`,
      );
    },
    done() {},
  };
}

/** Calls in the last 60 s, from samples of a running total. */
export class CallPace {
  readonly #samples: { at: number; total: number }[] = [];

  sample(at: number, total: number): number {
    this.#samples.push({ at, total });
    // Keep the newest sample at least a minute old as the baseline.
    while ((this.#samples[1]?.at ?? Infinity) <= at - 60_000) this.#samples.shift();
    const base = this.#samples[0] ?? { at, total };
    // Younger than a minute: every call so far is in the last minute.
    return base.at <= at - 60_000 ? total - base.total : total;
  }
}

function rate(p: ExportProgress): number {
  return p.elapsedMs > 0 ? (p.bytes * 1000) / p.elapsedMs : 0;
}

export function formatLine(p: ProgressView): string {
  const bps = rate(p);
  const remaining = p.total - p.done;
  const perItemMs = p.done > 0 ? p.elapsedMs / p.done : undefined;
  const parts = [
    `${p.phase} ${p.done}/${p.total} settled`,
    `${p.stored} stored`,
    formatBytes(p.bytes),
    `${formatBytes(bps)}/s`,
  ];
  if (remaining > 0 && perItemMs !== undefined) parts.push(`ETA ${formatDuration(remaining * perItemMs)}`);
  parts.push(`${p.waiting} waiting for processing`);
  if (p.apiCallsLastMinute !== undefined && p.apiLimitPerMinute !== undefined) {
    parts.push(`API ${p.apiCallsLastMinute}/${formatCount(p.apiLimitPerMinute)} per min`);
  }
  if (p.retries !== undefined) parts.push(`${p.retries} ${p.retries === 1 ? 'retry' : 'retries'}`);
  return parts.join(' · ');
}

function formatCount(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i] ?? 'B'}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
