/**
 * Where a recording lands inside a store (the CLI contract's "What lands in
 * storage"), and the check every backend applies to a key before touching
 * anything. The pipeline maps ids to safe keys here; the backends check
 * keys again (`objectKeyProblem`) as defence in depth.
 */
import { createHash } from 'node:crypto';

import { CxrecError } from '../errors.js';
import type { Channel } from '../state/ledger.js';

/** An id used verbatim as a key: a safe first character, at most 128 characters, no `..`. */
const verbatimIdPattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** How the store names objects, as far as keys care (`ObjectStore.foldsCase`). */
export interface KeyOptions {
  /** Keys differing only in case name one object (a local root on SMB/NTFS, APFS). @default false */
  foldsCase?: boolean | undefined;
}

/**
 * The `{key}` part of a recording's object names: the id itself when it is
 * safe in every store and file system, else `id-` and the first 32 hex
 * digits of its sha256 (the original id stays in the ledger, manifest and
 * sidecar). On a store that folds case an id holding `A`–`Z` is hashed
 * too, so `abc` and `ABC` never share an object.
 */
export function recordingKeyPart(recordingId: string, options: KeyOptions = {}): string {
  const verbatim =
    verbatimIdPattern.test(recordingId) &&
    !recordingId.includes('..') &&
    !(options.foldsCase === true && /[A-Z]/.test(recordingId));
  if (verbatim) return recordingId;
  return `id-${createHash('sha256').update(recordingId, 'utf8').digest('hex').slice(0, 32)}`;
}

/**
 * Content types we store, and their extension. The aliases are spellings
 * media servers use for the same formats.
 */
const extensions: Readonly<Record<string, MediaExtension>> = {
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/wave': 'wav',
  'audio/vnd.wave': 'wav',
  'audio/mpeg': 'mp3',
  'audio/mp3': 'mp3',
  // The platform dialect's media playback serves AAC in MP4 (cxone-platform-api.md section 4).
  'audio/mp4': 'mp4',
  'audio/x-m4a': 'mp4',
};

export type MediaExtension = 'wav' | 'mp3' | 'mp4';

/** `wav`, `mp3` or `mp4` for a media content type (parameters such as `; codecs=1` are ignored). */
export function extensionFor(contentType: string): MediaExtension {
  const bare = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  const ext = extensions[bare];
  if (ext === undefined) {
    throw new CxrecError(
      'invalid_response',
      'media has a content type cxrec does not store (expected audio/wav, audio/mpeg or audio/mp4)',
      { context: { contentType: contentType.slice(0, 100) } },
    );
  }
  return ext;
}

/**
 * `CXREC_LAYOUT`: `flat` puts every object straight under `recordings/`;
 * `date` adds the recording's UTC start day (`YYYY/MM/DD/`), so no folder
 * holds more than a day of calls (a NAS folder of a million entries is slow
 * to list and to back up).
 */
export const layouts = ['flat', 'date'] as const;
export type Layout = (typeof layouts)[number];

/**
 * The folder under `recordings/` (and `metadata/`) a recording goes to:
 * empty for `flat`, `YYYY/MM/DD/` of `createdDate` in UTC for `date`.
 * `createdDate` is the recording's start: the recording-api's createdDate,
 * the platform dialect's contact start.
 */
export function layoutFolder(layout: Layout, createdDate: string): string {
  if (layout === 'flat') return '';
  const ms = Date.parse(createdDate);
  const day = Number.isNaN(ms) ? undefined : /^(\d{4})-(\d{2})-(\d{2})T/.exec(new Date(ms).toISOString());
  if (!day) {
    throw new CxrecError(
      'invalid_response',
      `the recording's start ${JSON.stringify(createdDate.slice(0, 40))} is not an ISO-8601 date within the years 0000-9999, which CXREC_LAYOUT=date needs for its folder`,
      { context: { createdDate: createdDate.slice(0, 40) } },
    );
  }
  return `${day[1]}/${day[2]}/${day[3]}/`;
}

/** `recordings/{folder}{key}_{channel}.{ext}`; `folder` from `layoutFolder` (empty: the flat layout). */
export function recordingObjectKey(
  recordingId: string,
  channel: Channel,
  contentType: string,
  folder = '',
  options: KeyOptions = {},
): string {
  return `recordings/${folder}${recordingKeyPart(recordingId, options)}_${channel}.${extensionFor(contentType)}`;
}

/** `metadata/{folder}{key}.json`, the optional sidecar. */
export function sidecarObjectKey(recordingId: string, folder = '', options: KeyOptions = {}): string {
  return `metadata/${folder}${recordingKeyPart(recordingId, options)}.json`;
}

/**
 * The sidecar beside a stored object: the same folder under `metadata/`
 * and the same `{key}` part as the object `recordings/{folder}{key}_{channel}.{ext}`,
 * so a recording's sidecar stays with its objects whatever CXREC_LAYOUT
 * says today. `undefined` for a key of no such shape.
 */
export function sidecarKeyBeside(objectKey: string): string | undefined {
  const m = /^recordings\/((?:[^/]+\/)*)([^/]+)_(?:combined|caller|agent)\.[a-z0-9]+$/.exec(objectKey);
  return m ? `metadata/${m[1] ?? ''}${m[2] ?? ''}.json` : undefined;
}

/** The staging area of local storage; no key may point into it. */
export const partialDirName = '.partial';

/**
 * Why `key` may not be used as an object key, or `undefined` when it may:
 * relative, `/`-separated, no empty, `.` or `..` segment, no NUL, control
 * character or backslash (a separator on Windows), not inside `.partial/`,
 * at most 1024 UTF-8 bytes (the S3 limit) and 255 per segment (file names).
 */
export function objectKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'is empty';
  if (Buffer.byteLength(key, 'utf8') > 1024) return 'is longer than 1024 bytes';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'holds a NUL or control character';
  if (key.includes('\\')) return 'holds a backslash';
  if (key.startsWith('/')) return 'is absolute';
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '') return 'has an empty path segment';
    if (segment === '.' || segment === '..') return 'has a "." or ".." segment';
    if (Buffer.byteLength(segment, 'utf8') > 255) return 'has a segment longer than 255 bytes';
  }
  if (segments[0] === partialDirName) return `points into ${partialDirName}/, the staging area`;
  return undefined;
}

/** Throws a `CxrecError('storage')` unless `key` is safe (see `objectKeyProblem`). */
export function assertObjectKey(key: string, location: string): void {
  const problem = objectKeyProblem(key);
  if (problem !== undefined) {
    throw new CxrecError('storage', `refused object key: it ${problem}; keys come from keys.ts`, {
      retryable: false,
      context: { key: JSON.stringify(key.slice(0, 200)), location },
    });
  }
}
