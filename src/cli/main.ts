import { Command, CommanderError } from 'commander';

import { CxrecError } from '../errors.js';
import { rootLogger } from '../log.js';
import { doctorCommand } from './doctor.js';
import { exportCommand } from './export.js';
import { manifestCommand } from './manifest.js';
import { retryCommand } from './retry.js';
import { runCommand } from './run.js';
import { simulateCommand } from './simulate.js';
import { statusCommand } from './status.js';
import { uiCommand } from './ui.js';
import { verifyCommand } from './verify.js';

/** Builds the `cxrec` program; each command lives in its own file under `cli/`. */
export function buildProgram(): Command {
  const program = new Command('cxrec')
    .description('Export NICE CXone call recordings, verified, into your own storage.')
    .option('--config <file>', 'YAML file with settings (environment variables win)')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      '\nSettings come from environment variables (see README), or a YAML file given with --config.\n' +
        'Quick start: `cxrec simulate` in one terminal, then `cxrec export --since <ISO>` with the variables it prints.',
    );
  for (const command of [
    exportCommand(),
    runCommand(),
    statusCommand(),
    manifestCommand(),
    verifyCommand(),
    doctorCommand(),
    retryCommand(),
    simulateCommand(),
    uiCommand(),
  ]) {
    program.addCommand(command.exitOverride());
  }
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
