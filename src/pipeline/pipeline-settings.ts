import type { Config } from '../config.js';

/** The settings the pipeline runs with: the part of `Config` that shapes discovery and downloads. */
export type PipelineSettings = Pick<
  Config,
  | 'channels'
  | 'channelFallback'
  | 'concurrency'
  | 'pollSeconds'
  | 'maxProcessingMinutes'
  | 'retentionDays'
  | 'backoffSeconds'
  | 'mediaHosts'
  | 'sidecars'
  | 'layout'
  | 'discoverSeconds'
>;
