/**
 * What the pipeline needs from CXone: the three recording endpoints, with
 * auth, the tenant rate limit, retries and cursor recovery already handled
 * below this line (`src/cxone/`). Kept narrow so the pipeline reads as the
 * flow it is.
 */
import type { Channel, DownloadUrl, Recording, RecordingDetail, RecordingStatus } from '../cxone/wire.js';

export type { Channel, DownloadUrl, Recording, RecordingDetail, RecordingStatus };

export interface ListWindow {
  /** ISO-8601, inclusive. */
  from: string;
  /** ISO-8601, exclusive. */
  to: string;
  /** Only these statuses; all when absent. */
  statuses?: readonly RecordingStatus[];
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface RecordingApi {
  /** Every recording of the window, oldest first, each once per listing, page by page. */
  list(window: ListWindow, options?: CallOptions): AsyncIterable<readonly Recording[]>;
  detail(recordingId: string, options?: CallOptions): Promise<RecordingDetail>;
  downloadUrl(recordingId: string, channel: Channel, options?: CallOptions): Promise<DownloadUrl>;
}
