/**
 * The two time rules every part of the pipeline applies to a recording,
 * written once: how long it may stay unfinished on the platform
 * (CXREC_MAX_PROCESSING_MINUTES after createdDate), and how old it may be
 * for a download still to be worth starting (70 % of CXREC_RETENTION_DAYS).
 */
const DAY_MS = 86_400_000;

/**
 * The share of the retention a recording may have used up and still be
 * fetched: past it, the media may be purged while the job waits or
 * retries, so the recording is reported `out_of_retention` instead.
 */
const fetchableRetentionShare = 0.7;

export interface RecordingPolicy {
  retentionDays: number;
  maxProcessingMinutes: number;
}

/** Recordings created before this instant are past 70 % of the retention: not fetched. */
export function oldestFetchable(policy: Pick<RecordingPolicy, 'retentionDays'>, now: number): number {
  return now - fetchableRetentionShare * policy.retentionDays * DAY_MS;
}

/** `out_of_retention` with its reason, for a recording created before `oldestFetchable`; otherwise undefined. */
export function outOfRetention(
  policy: Pick<RecordingPolicy, 'retentionDays'>,
  createdDate: string,
  now: number,
): { state: 'out_of_retention'; reason: string } | undefined {
  if (Date.parse(createdDate) >= oldestFetchable(policy, now)) return undefined;
  return {
    state: 'out_of_retention',
    reason: `older than 70 % of the ${policy.retentionDays}-day retention`,
  };
}

/** When the platform purges the media by default (`retentionExpiresAt` absent from the detail). */
export function retentionEnd(policy: Pick<RecordingPolicy, 'retentionDays'>, createdDate: string): number {
  return Date.parse(createdDate) + policy.retentionDays * DAY_MS;
}

/**
 * `failed_processing` with its reason, for a recording still `status` (not
 * Available) once CXREC_MAX_PROCESSING_MINUTES have passed since createdDate;
 * undefined while it may still become Available.
 */
export function processingGivenUp(
  policy: Pick<RecordingPolicy, 'maxProcessingMinutes'>,
  createdDate: string,
  status: string,
  now: number,
): { state: 'failed_processing'; reason: string } | undefined {
  if (Date.parse(createdDate) + policy.maxProcessingMinutes * 60_000 > now) return undefined;
  return {
    state: 'failed_processing',
    reason: `still ${status} ${policy.maxProcessingMinutes} minutes after createdDate`,
  };
}
/**
 * When a recording still not Available is next looked at: the first wait is
 * `CXREC_POLL_SECONDS`, then about as long as it has already waited (so the
 * waits double), at most 16 × the first.
 */
export function nextRecheckAt(pollSeconds: number, firstSeenAt: number, now: number): number {
  const poll = pollSeconds * 1000;
  return now + Math.min(Math.max(poll, now - firstSeenAt), 16 * poll);
}
