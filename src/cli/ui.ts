import { Command, InvalidArgumentError } from 'commander';

import { openState } from '../runtime.js';
import { startServiceHttp } from '../service/http-server.js';
import { statusPageSource } from '../service/status-data.js';
import { commandContext, shutdownSignal } from './command-context.js';

function portNumber(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65_535) {
    throw new InvalidArgumentError('must be a whole number from 0 to 65535');
  }
  return Number(value);
}

/** `cxrec ui`: the status page over a ledger, without exporting anything. */
export function uiCommand(): Command {
  return new Command('ui')
    .description(
      'Serves the status page over the ledger (CXREC_STATE) without exporting: counts, backlog, the last hour, ' +
        'failures, search by recording or contact id. Read only; stops on SIGINT or SIGTERM.',
    )
    .option(
      '--port <n>',
      'port to listen on (default: CXREC_HTTP_PORT, else 9464; 0 picks a free one)',
      portNumber,
    )
    .addHelpText(
      'after',
      '\nListens on CXREC_HTTP_HOST (default 127.0.0.1; 0.0.0.0 for every interface).\n' +
        'Exit codes: 0 after a stop; 2 bad settings or the address cannot be listened on.',
    )
    .action(async (opts: { port?: number }, command: Command) => {
      const { config, log } = commandContext(command);
      const ledger = await openState(config);
      const shutdown = shutdownSignal(log);
      try {
        const http = await startServiceHttp({
          host: config.httpHost,
          port: opts.port ?? config.httpPort ?? 9464,
          log,
          status: statusPageSource({
            ledger,
            mode: 'ui',
            rateLimitPerMinute: config.rateLimitPerMinute,
            now: () => Date.now(),
          }),
        });
        const shown = config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost;
        process.stdout.write(`cxrec ui: the status page is at http://${shown}:${http.port}/\n`);
        log.info({ host: config.httpHost, port: http.port }, 'serving the status page');
        await new Promise<void>((resolve) => {
          if (shutdown.signal.aborted) resolve();
          shutdown.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        await http.close();
      } finally {
        shutdown.dispose();
        await ledger.close();
      }
      process.exitCode = 0;
    });
}
