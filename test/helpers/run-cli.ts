/**
 * Runs the real `cxrec` CLI (from source, through tsx) as a child process,
 * the way an operator or the acceptance checks run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
/** The built binary, for benchmarks: what operators run, without tsx's start-up and memory. */
const distCliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  child: ChildProcess;
  done: Promise<CliResult>;
}

export function startCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { built?: boolean } = {},
): CliRun {
  const argv = options.built ? [distCliPath, ...args] : ['--import', 'tsx', cliPath, ...args];
  const child = spawn(process.execPath, argv, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return startCli(args, env).done;
}

/** A generous rate limit, fast polling and backoff, warnings only: what e2e exports against a simulator run with. */
export const fastSettings = {
  CXREC_RATE_LIMIT: '1200',
  CXREC_POLL_SECONDS: '0.05',
  CXREC_BACKOFF_SECONDS: '0.02',
  CXREC_LOG_LEVEL: 'warn',
};
