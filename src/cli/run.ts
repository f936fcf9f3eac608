import { Command } from 'commander';

import { runService, type ServiceState } from '../pipeline/service-job.js';
import { openCxone, openState, openStore, type CxoneRuntime } from '../runtime.js';
import { startServiceHttp, type ServiceHttp } from '../service/http-server.js';
import { createServiceMetrics } from '../service/metrics.js';
import { commandContext, shutdownSignal } from './command-context.js';

export function runCommand(): Command {
  return new Command('run')
    .description(
      'The service: discovers new recordings every CXREC_DISCOVER_SECONDS and downloads them, until SIGINT or ' +
        'SIGTERM, then stops cleanly (transfers in flight are parked for a resume; nothing half-written is ' +
        'visible). Several processes may share one PostgreSQL ledger (CXREC_STATE=postgres://...): one of ' +
        'them discovers, all of them download.',
    )
    .addHelpText(
      'after',
      '\nWith CXREC_HTTP_PORT set, serves /metrics (Prometheus), /healthz and /readyz on that port.\n' +
        'The first pass lists every recording still within 70 % of CXREC_RETENTION_DAYS; later passes list\n' +
        'from the last pass minus 15 minutes (a whole day about once an hour), for recordings the index shows late.\nExit codes: 0 after a clean stop; 1 an unexpected error; 2 bad settings; 3 cannot reach CXone or auth refused.',
    )
    .action(async (_opts: unknown, command: Command) => {
      const { config, log } = commandContext(command);
      const ledger = await openState(config);
      const store = await openStore(config);
      const state: ServiceState = { started: false, discoverer: false, lastError: undefined, passes: 0 };
      // The metrics read the client's call counts, and the client's limiter is wrapped by the metrics.
      const holder: { cxone?: CxoneRuntime } = {};
      const metrics = createServiceMetrics({
        ledger,
        apiStats: () => holder.cxone?.client.apiStats,
        retentionDays: config.retentionDays,
        now: () => Date.now(),
      });
      const cxone = await openCxone(config, log, { wrapLimiter: (l) => metrics.meter(l) });
      holder.cxone = cxone;
      const shutdown = shutdownSignal(log);
      let running = true;
      let http: ServiceHttp | undefined;
      try {
        if (config.httpPort !== undefined) {
          http = await startServiceHttp(config.httpPort, metrics.registry, {
            alive: () => running,
            ready: () =>
              !running
                ? { ok: false, reason: 'stopping' }
                : !state.started
                  ? { ok: false, reason: 'starting' }
                  : {
                      ok: true,
                      reason: state.lastError ? `ready (last discovery error: ${state.lastError})` : 'ready',
                    },
          });
          log.info({ port: http.port }, 'serving /metrics, /healthz and /readyz');
        }
        await runService(
          {
            api: cxone.api,
            ledger,
            store,
            dispatcher: cxone.dispatcher,
            settings: config,
            log,
            signal: shutdown.signal,
            onJobDone: (outcome, ms) => metrics.jobDone(outcome, ms),
            onBytes: (n) => metrics.bytes(n),
          },
          state,
        );
      } finally {
        running = false;
        shutdown.dispose();
        await http?.close();
        await store.close?.();
        await ledger.close();
        await cxone.close();
      }
      process.exitCode = 0;
    });
}
