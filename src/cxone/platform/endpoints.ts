/** The platform dialect's calls, as counted in `ApiStats` and `/metrics`. */
export type PlatformEndpoint =
  'openid_configuration' | 'token' | 'cxone_configuration' | 'contacts_completed' | 'playback';

export const platformEndpoints: readonly PlatformEndpoint[] = [
  'openid_configuration',
  'token',
  'cxone_configuration',
  'contacts_completed',
  'playback',
];

/** Which budget each call spends (contract §5): logins and `.well-known` documents spend none. */
export const budgetOf: Readonly<Record<PlatformEndpoint, 'api' | 'playback' | undefined>> = {
  openid_configuration: undefined,
  token: undefined,
  cxone_configuration: undefined,
  contacts_completed: 'api',
  playback: 'playback',
};
