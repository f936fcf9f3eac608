/** The platform dialect's client: what the rest of cxrec imports from `src/cxone/platform/`. */
export { AccessKeyLogin } from './access-key-login.js';
export type { Session } from './access-key-login.js';
export { defaultApiVersion, defaultAuthUrl, maxContactsPageSize, PlatformClient } from './client.js';
export type {
  CallOptions,
  CompletedContactsPage,
  CompletedContactsQuery,
  PlatformClientOptions,
  PlaybackInteraction,
  PlaybackProbe,
  PlaybackResult,
} from './client.js';
export { budgetOf, platformEndpoints } from './endpoints.js';
export type { PlatformEndpoint } from './endpoints.js';
export { playbackPermission } from './permissions.js';
export type { CompletedContact } from './wire.js';
