import { Command } from 'commander';

import { createNotifier, FailureNotices } from '../notify.js';

import { runService, type ServiceState } from '../pipeline/service-job.js';
import { openPipeline, type OpenedPipeline } from '../pipeline/runner.js';
import { startServiceHttp, type ServiceHttp } from '../service/http-server.js';
import { createServiceMetrics, type ServiceMetrics } from '../service/metrics.js';
import { statusPageSource } from '../service/status-data.js';
import { commandContext, shutdownSignal } from './command-context.js';
import { notifyWaitMs } from './export.js';

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
      '\nWith CXREC_HTTP_PORT set, serves the status page /, /metrics (Prometheus), /healthz and /readyz on that\n' +
        'port, on CXREC_HTTP_HOST (default 127.0.0.1; 0.0.0.0 for every interface).\n' +
        'The first pass lists every recording still within 70 % of CXREC_RETENTION_DAYS; later passes list\n' +
        'from the last pass minus 15 minutes (a whole day about once an hour), for recordings the index shows late.\nExit codes: 0 after a clean stop; 1 an unexpected error; 2 bad settings; 3 cannot reach CXone or auth refused.',
    )
    .action(async (_opts: unknown, command: Command) => {
      const { config, log } = commandContext(command);
      const state: ServiceState = { started: false, discoverer: false, lastError: undefined, passes: 0 };
      // The metrics read the ledger and the client's call counts, and the client's limiter is wrapped by the metrics.
      const holder: { pipeline?: OpenedPipeline; metrics?: ServiceMetrics } = {};
      const pipeline = await openPipeline(config, log, {
        wrapLimiter: (limiter, ledger) => {
          holder.metrics = createServiceMetrics({
            ledger,
            apiStats: () => holder.pipeline?.cxone.apiStats,
            retentionDays: config.retentionDays,
            rateLimitPerMinute: config.rateLimitPerMinute,
            now: () => Date.now(),
          });
          return holder.metrics.meter(limiter);
        },
      });
      holder.pipeline = pipeline;
      const shutdown = shutdownSignal(log);
      const notifier =
        config.notifyUrl === undefined
          ? undefined
          : createNotifier({ url: config.notifyUrl, log, backoffSeconds: config.backoffSeconds });
      const failures = notifier ? new FailureNotices(notifier) : undefined;
      let running = true;
      let http: ServiceHttp | undefined;
      try {
        const { metrics } = holder;
        // openPipeline always builds the client, which calls wrapLimiter.
        if (!metrics) throw new Error('the service metrics were not set up');
        if (config.httpPort !== undefined) {
          http = await startServiceHttp({
            host: config.httpHost,
            port: config.httpPort,
            log,
            metrics: metrics.registry,
            health: {
              alive: () => running,
              ready: () =>
                !running
                  ? { ok: false, code: 'stopping' }
                  : !state.started
                    ? { ok: false, code: 'starting' }
                    : { ok: true, code: state.lastError ? 'ready discovery_failing' : 'ready' },
            },
            status: statusPageSource({
              ledger: pipeline.ledger,
              mode: 'run',
              rateLimitPerMinute: config.rateLimitPerMinute,
              now: () => Date.now(),
              processApiGrants: (now) => metrics.apiGrants(now),
            }),
          });
          log.info(
            { host: config.httpHost, port: http.port },
            'serving the status page /, /metrics, /healthz and /readyz',
          );
        }
        await runService(
          {
            ...pipeline,
            log,
            signal: shutdown.signal,
            onJobDone: (outcome, ms) => metrics.jobDone(outcome, ms),
            onBytes: (n) => metrics.bytes(n),
            onPass: () => metrics.discoveryPassed(Date.now()),
            ...(failures ? { onFailed: (job, reason) => failures.failed(job, reason) } : {}),
          },
          state,
        );
      } finally {
        running = false;
        failures?.stop();
        await notifier?.settle(notifyWaitMs);
        shutdown.dispose();
        await http?.close();
        await pipeline.close();
      }
      process.exitCode = 0;
    });
}
