/**
 * How both media hosts (the recording API's presigned URLs and the
 * platform's `fileToPlayUrl`) refuse a request before any transfer: an
 * S3-style XML error, counted as a media call with its status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { CallOutcome } from './call-counts.js';
import type { FaultInjector } from './faults.js';
import { writeXmlError } from './http-io.js';

export type RefuseMedia = (
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
) => void;

export function mediaRefusal(res: ServerResponse, count: (outcome: CallOutcome) => void): RefuseMedia {
  return (status, code, message, headers = {}) => {
    count(`${status}`);
    writeXmlError(res, status, code, message, headers);
  };
}

/**
 * What a media host refuses whatever the URL: a method other than GET and
 * HEAD (405), and the injected server error (500 InternalError or 503
 * SlowDown). True when it refused.
 */
export function refusedAnyUrl(req: IncomingMessage, faults: FaultInjector, refuse: RefuseMedia): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    refuse(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', {
      Allow: 'GET, HEAD',
    });
    return true;
  }
  if (faults.roll('serverError')) {
    if (faults.int(0, 1) === 0)
      refuse(500, 'InternalError', 'We encountered an internal error. Please try again.');
    else refuse(503, 'SlowDown', 'Please reduce your request rate.');
    return true;
  }
  return false;
}
