import { Command, CommanderError } from 'commander';

import { CxrecError } from '../errors.js';
import { rootLogger } from '../log.js';

/** Builds the `cxrec` program; each command lives in its own file under `cli/`. */
export function buildProgram(): Command {
  const program = new Command('cxrec')
    .description('Export NICE CXone call recordings, verified, into your own storage.')
    .option('--config <file>', 'YAML file with settings (environment variables win)')
    .showHelpAfterError()
    .exitOverride();
  return program;
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors with 2.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CxrecError) {
      process.stderr.write(`cxrec: ${err.message}\n`);
      return err.exitCode;
    }
    rootLogger().error({ err }, 'unexpected error');
    return 1;
  }
}
