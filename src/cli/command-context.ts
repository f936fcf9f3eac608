/**
 * What every command starts with: the settings (environment and the global
 * `--config` file), and a root logger at `CXREC_LOG_LEVEL`.
 */
import { setMaxListeners } from 'node:events';

import type { Command } from 'commander';

import { loadConfig, type Config } from '../config.js';
import { configureRootLogger, type Logger } from '../log.js';

export interface CommandContext {
  config: Config;
  log: Logger;
}

export function commandContext(command: Command): CommandContext {
  const { config: configFile } = command.optsWithGlobals<{ config?: string }>();
  const config = loadConfig({ configFile });
  const log = configureRootLogger({ level: config.logLevel });
  return { config, log };
}

/**
 * An AbortSignal that fires on the first SIGINT or SIGTERM, so work stops
 * cleanly; a second signal exits at once. `dispose` removes the handlers.
 */
export function shutdownSignal(log: Logger): {
  signal: AbortSignal;
  received(): NodeJS.Signals | undefined;
  dispose(): void;
} {
  const controller = new AbortController();
  // Every in-flight request and wait listens to this one signal.
  setMaxListeners(0, controller.signal);
  let got: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (got !== undefined) {
      log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    got = sig;
    log.info({ signal: sig }, 'stopping: no new work; transfers in flight are parked for a resume');
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    received: () => got,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
