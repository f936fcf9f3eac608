/**
 * The pino root logger. Logs go to stderr so that stdout stays clean for
 * what commands print (`status --json`, `manifest`): JSON lines when stderr
 * is not a terminal; on a terminal one short line per record above the live
 * progress line (`terminal.ts`), error stacks only at `debug`. Every record passes through
 * the redaction in `redact.ts`, so a secret, token or presigned-URL
 * signature cannot reach a log at any level.
 */
import { pino, stdSerializers, type Logger, type LevelWithSilent } from 'pino';

import { REDACTED, scrubText, scrubValue, secretKeys } from './redact.js';
import { formatLogLine, stderrStatusLine, type StatusLine } from './terminal.js';

export type { Logger } from 'pino';

/** pino `redact` paths: the secret keys at the top level and one level down. */
export const redactPaths = [
  ...secretKeys.flatMap((k) => [k, `*.${k}`]),
  'headers.authorization',
  'req.headers.authorization',
];

export interface LoggerOptions {
  /** @default 'info' */
  level?: LevelWithSilent;
  /** Force readable or JSON output. @default whether stderr is a TTY */
  pretty?: boolean;
  /** Where to write. @default stderr */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const usePretty = options.pretty ?? (destination === process.stderr && process.stderr.isTTY);
  const level = options.level ?? 'info';
  const stream = usePretty ? terminalDestination(destination, level === 'debug') : destination;
  return pino(
    {
      level,
      base: null,
      redact: { paths: redactPaths, censor: REDACTED },
      serializers: {
        err: (err: Error) => scrubValue(stdSerializers.err(err)),
      },
      formatters: {
        log: (record) => scrubValue(record) as Record<string, unknown>,
      },
      hooks: {
        // Messages are free text and may quote a URL or an upstream error.
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? scrubText(a) : a)) as Parameters<typeof method>,
          );
        },
      },
    },
    stream,
  );
}

/** Readable lines, printed above stderr's progress line when there is one. */
function terminalDestination(
  destination: NodeJS.WritableStream,
  stacks: boolean,
): { write(s: string): void } {
  const status: StatusLine | undefined = destination === process.stderr ? stderrStatusLine() : undefined;
  const colour = destination === process.stderr && process.stderr.isTTY;
  return {
    write(s: string) {
      const line = formatLogLine(JSON.parse(s) as Record<string, unknown>, { stacks, colour });
      if (status) status.print(line);
      else destination.write(line);
    },
  };
}

let root: Logger | undefined;

/** The process-wide root logger; `configureRootLogger` replaces it once settings are known. */
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}

export function configureRootLogger(options: LoggerOptions): Logger {
  root = createLogger(options);
  return root;
}
