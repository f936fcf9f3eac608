/** The pipeline's `RecordingApi` served by the CXone client. */
import type { CxoneClient } from '../cxone/client.js';
import type { CallOptions, ListWindow, Recording, RecordingApi } from './recording-api.js';

export function cxoneRecordingApi(client: CxoneClient): RecordingApi {
  return {
    async *list(window: ListWindow, options: CallOptions = {}): AsyncIterable<readonly Recording[]> {
      const query = {
        createdFrom: window.from,
        createdBefore: window.to,
        sort: 'asc' as const,
        ...(window.statuses ? { statuses: window.statuses } : {}),
      };
      for await (const page of client.search(query, options)) {
        if (page.recordings.length > 0) yield page.recordings;
      }
    },
    detail: (recordingId, options) => client.detail(recordingId, options),
    downloadUrl: (recordingId, channel, options) => client.downloadUrl(recordingId, channel, options),
  };
}
