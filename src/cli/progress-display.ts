/**
 * How long work shows itself: on a terminal, one line redrawn in place
 * (done / total, bytes, rate, waiting for processing, ETA); otherwise a JSON
 * line every `intervalMs`, so a log collector sees the run move. Both go to
 * stderr: stdout carries the command's result.
 */
import type { ExportProgress } from '../pipeline/export-job.js';

export interface ProgressDisplay {
  update(progress: ExportProgress): void;
  done(): void;
}

export function progressDisplay(
  stream: NodeJS.WriteStream = process.stderr,
  intervalMs = 10_000,
): ProgressDisplay {
  if (stream.isTTY) {
    let width = 0;
    return {
      update(p) {
        const line = formatLine(p);
        stream.write(`\r${line.padEnd(width)}`);
        width = line.length;
      },
      done() {
        if (width > 0) stream.write('\n');
      },
    };
  }
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < intervalMs && p.phase !== 'done') return;
      last = now;
      stream.write(
        `${JSON.stringify({ progress: { ...p, bytesPerSecond: Math.round(rate(p)) }, time: new Date(now).toISOString() })}\n`,
      );
    },
    done() {},
  };
}

function rate(p: ExportProgress): number {
  return p.elapsedMs > 0 ? (p.bytes * 1000) / p.elapsedMs : 0;
}

export function formatLine(p: ExportProgress): string {
  const bps = rate(p);
  const remaining = p.total - p.done;
  const perItemMs = p.done > 0 ? p.elapsedMs / p.done : undefined;
  const eta =
    remaining > 0 && perItemMs !== undefined ? ` · ETA ${formatDuration(remaining * perItemMs)}` : '';
  return (
    `${p.phase}: ${p.done}/${p.total} settled (${p.stored} stored) · ${formatBytes(p.bytes)} · ` +
    `${formatBytes(bps)}/s · ${p.downloading} downloading · ${p.waiting} waiting for processing${eta}`
  );
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
