/**
 * What a person at a terminal sees on stderr: log records as one short line
 * each, and at the bottom one live status line (the export's progress),
 * redrawn in place. A log line clears the status line first and redraws it
 * after, so the two never run into each other. Off a terminal none of this
 * is used: logs are JSON lines (`log.ts`).
 */

const clearLine = '\r\x1b[2K';

export class StatusLine {
  #line = '';
  #shown = false;

  constructor(private readonly stream: NodeJS.WritableStream & { columns?: number }) {}

  /** Replaces the status line; cut to the terminal's width, since a wrapped line cannot be redrawn in place. */
  set(line: string): void {
    this.#line = fitWidth(line, this.stream.columns);
    this.stream.write(`${clearLine}${this.#line}`);
    this.#shown = this.#line !== '';
  }

  /** Prints text (one or more whole lines) above the status line. */
  print(text: string): void {
    const body = text.endsWith('\n') ? text : `${text}\n`;
    this.stream.write(`${this.#shown ? clearLine : ''}${body}${this.#line}`);
    this.#shown = this.#line !== '';
  }

  /** Leaves the last status on its own line and stops redrawing it. */
  end(): void {
    if (this.#shown) this.stream.write('\n');
    this.#line = '';
    this.#shown = false;
  }
}

function fitWidth(line: string, columns: number | undefined): string {
  const width = Math.max(20, (columns ?? 80) - 1);
  const chars = Array.from(line.replace(/[\r\n]+/g, ' '));
  return chars.length <= width ? chars.join('') : `${chars.slice(0, width - 1).join('')}…`;
}

let stderrLine: StatusLine | undefined;

/** The status line of stderr when stderr is a terminal, shared by the logger and the progress display. */
export function stderrStatusLine(): StatusLine | undefined {
  if (!process.stderr.isTTY) return undefined;
  stderrLine ??= new StatusLine(process.stderr);
  return stderrLine;
}

const levelNames: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const levelColours: Record<number, string> = { 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };

export interface LogLineOptions {
  /** Append the error's stack (on lines of its own): only at the `debug` level. */
  stacks: boolean;
  colour: boolean;
}

/**
 * One pino record as one line: `08:12:03 WARN recording failed recordingId=… reason="…"`.
 * An error shows as its code and message; its stack only with `stacks`.
 */
export function formatLogLine(record: Record<string, unknown>, options: LogLineOptions): string {
  const { level, time, msg, err, ...fields } = record;
  const levelNumber = typeof level === 'number' ? level : 30;
  const name = (levelNames[levelNumber] ?? String(level)).padEnd(5);
  const colour = options.colour ? levelColours[levelNumber] : undefined;
  const when = new Date(typeof time === 'number' ? time : Date.now()).toTimeString().slice(0, 8);
  const parts = [when, colour ? `${colour}${name}\x1b[0m` : name];
  if (typeof msg === 'string' && msg !== '') parts.push(msg.replace(/\s*\n\s*/g, ' '));
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  let stack = '';
  if (err !== undefined && err !== null) {
    const e = err as { code?: unknown; message?: unknown; stack?: unknown };
    const code = typeof e.code === 'string' ? `${e.code}: ` : '';
    const message = typeof e.message === 'string' ? e.message : formatValue(err);
    parts.push(`error=${formatValue(`${code}${message}`)}`);
    if (options.stacks && typeof e.stack === 'string') stack = `\n${e.stack.replace(/^/gm, '    ')}`;
  }
  return `${parts.join(' ')}${stack}\n`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  // JSON.stringify gives undefined for a function or a symbol.
  const json = JSON.stringify(value) as unknown;
  return typeof json === 'string' ? json : String(value);
}
