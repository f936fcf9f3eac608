/**
 * The errors the backends share, written once. An S3 or Azure SDK error
 * becomes a `CxrecError` that says whether it is retried and names the
 * operation, the service's error code and status, and what to check, never
 * the SDK's own message (it may quote a request URL with a SAS or a
 * connection string).
 */
import { CxrecError, isAbortError } from '../errors.js';
import { safeUrl } from '../redact.js';
import { urlSchemeProblem } from '../url-policy.js';

/** What the backend read off one SDK error. */
export interface SdkErrorFacts {
  /** The service's error code (`NoSuchBucket`, `ContainerNotFound`) or the error's name. */
  code: string;
  status: number | undefined;
  /** `; check …`, or `''`. */
  hint: string;
  /** The service refused bytes that did not match their md5. */
  digestMismatch: boolean;
  /** Retried even though the status is a 4xx (Azure's Md5Mismatch: the bytes are sent again). */
  retryAnyway?: boolean;
}

/**
 * A 4xx will fail the same way again, except 408 (timeout) and 429
 * (throttled); everything else (5xx, network) is retried.
 */
export function isPermanentStatus(status: number | undefined): boolean {
  return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export function sdkFailure(
  service: 'S3' | 'Azure',
  operation: string,
  context: { key: string; location: string },
  err: unknown,
  facts: (err: unknown) => SdkErrorFacts,
): CxrecError {
  if (err instanceof CxrecError) return err;
  if (isAbortError(err))
    return new CxrecError('aborted', `${service} ${operation} cancelled`, { cause: err, context });
  const { code, status, hint, digestMismatch, retryAnyway } = facts(err);
  return new CxrecError(
    digestMismatch ? 'integrity' : 'storage',
    `${service} ${operation} failed: ${code}${status ? ` (HTTP ${status})` : ''}${hint}`,
    { cause: err, context, retryable: !isPermanentStatus(status) || retryAnyway === true },
  );
}

/** `read` of a key that holds no object: nothing to retry. */
export function noObjectAt(location: string, key: string): CxrecError {
  return new CxrecError('storage', `no object at ${location}${key}`, { retryable: false, context: { key } });
}

/** Refuses a service endpoint `name` names unless it is https (or http to loopback); the message shows no credentials. */
export function checkEndpointUrl(name: string, url: string): void {
  const problem = urlSchemeProblem(url);
  if (problem !== undefined) {
    throw new CxrecError('config_invalid', `${name} (${safeUrl(url)}) ${problem}`, {
      context: { setting: name },
    });
  }
}
