/**
 * What the platform's 403s mean. The platform has no scopes: what the API
 * user may do comes from its CXone role, and a 403 names no permission
 * (contract §1, §4), so cxrec names it and says where to grant it.
 */
import { CxrecError } from '../../errors.js';

const where =
  'grant it to the role of the user who owns the access key (CXONE_ACCESS_KEY_ID) in Admin > Security > Roles and Permissions';

export const playbackPermission = 'Search & Playback > Player > Play/download recordings: Play Any';

/** 403 from media playback. */
export function playbackPermissionMissing(context: Record<string, string | number | undefined>): CxrecError {
  return new CxrecError(
    'permission_missing',
    `the CXone API user lacks the permission "${playbackPermission}" needed to fetch recordings: ${where}`,
    { context: { ...context, permission: playbackPermission } },
  );
}

/** 403 from the Reporting API (`contacts/completed`). */
export function reportingPermissionMissing(context: Record<string, string | number | undefined>): CxrecError {
  return new CxrecError(
    'permission_missing',
    `the CXone API user lacks the Reporting permission needed to list completed contacts: ${where}`,
    { context: { ...context, permission: 'Reporting' } },
  );
}
