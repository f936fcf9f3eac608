import { access, constants, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { Command } from 'commander';

import { loadConfig, type Config } from '../config.js';
import type { CxoneClient } from '../cxone/client.js';
import { CxrecError, describeError } from '../errors.js';
import { configureRootLogger, type Logger } from '../log.js';
import { redactUrlPassword } from '../redact.js';
import { openCxone, openState, openStore, type CxoneRuntime } from '../runtime.js';
import { playbackPermission } from '../cxone/platform/permissions.js';
import type { PlatformClient } from '../cxone/platform/client.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description(
      'Checks settings, the CXone token and its granted scopes, storage and the ledger, and says what to fix.',
    )
    .addHelpText(
      'after',
      '\nWith CXONE_DIALECT=platform it checks the issuer, the access-key login, tenant discovery, one\n' +
        'completed-contacts listing (the Reporting permission) and the media-playback permission instead.\n' +
        'Exit codes: 0 all fine; 1 otherwise.',
    )
    .action(async (_opts: unknown, command: Command) => {
      const { config: configFile } = command.optsWithGlobals<{ config?: string }>();
      const checks: Check[] = [];
      let config: Config | undefined;
      try {
        config = loadConfig({ configFile });
        checks.push({ name: 'settings', ok: true, detail: 'every setting is valid' });
      } catch (err) {
        checks.push(failure('settings', err, 'correct the settings named above'));
      }
      if (config) {
        const log = configureRootLogger({ level: 'error' });
        checks.push(await checkState(config));
        if (config.dialect === 'platform') checks.push(...(await checkPlatform(config, log)));
        else checks.push(await checkCxone(config, log));
        checks.push(await checkStorage(config));
      }
      for (const c of checks) {
        process.stdout.write(
          `${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(8)}  ${c.detail.replace(/\n/g, '\n                ')}\n`,
        );
        if (!c.ok && c.fix) process.stdout.write(`                fix: ${c.fix}\n`);
      }
      process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
    });
}

async function checkCxone(config: Config, log: Logger): Promise<Check> {
  let cxone;
  try {
    cxone = await openCxone(config, log, { ownLimiter: true });
  } catch (err) {
    return failure('cxone', err, 'set CXONE_API_URL, CXONE_CLIENT_ID and CXONE_CLIENT_SECRET');
  }
  try {
    const access = await (cxone.client as CxoneClient).checkAccess({ signal: AbortSignal.timeout(60_000) });
    if (access.missingScopes.length > 0) {
      return {
        name: 'cxone',
        ok: false,
        detail: `token granted [${access.grantedScopes.join(' ')}], missing ${access.missingScopes.join(', ')}`,
        fix:
          'bind the missing scope(s) to the API client itself, not to a user: ' +
          'Admin > Security > OAuth > API Clients > Scopes',
      };
    }
    return {
      name: 'cxone',
      ok: true,
      detail: `token granted [${access.grantedScopes.join(' ')}] by ${config.apiUrl ?? ''}`,
    };
  } catch (err) {
    const code = err instanceof CxrecError ? err.code : undefined;
    const fix =
      code === 'auth_failed'
        ? 'check CXONE_CLIENT_ID and CXONE_CLIENT_SECRET (Admin > Security > OAuth > API Clients)'
        : code === 'scope_missing'
          ? 'bind recording:read and recording:download to the API client itself, not to a user'
          : 'check CXONE_API_URL and that this machine can reach it';
    return failure('cxone', err, fix);
  } finally {
    await cxone.close();
  }
}

/** The platform dialect: each step of what an export does first, in the operator's words. */
async function checkPlatform(config: Config, log: Logger): Promise<Check[]> {
  let cxone: CxoneRuntime;
  try {
    cxone = await openCxone(config, log, { ownLimiter: true });
  } catch (err) {
    return [
      failure(
        'cxone',
        err,
        'set CXONE_ACCESS_KEY_ID, CXONE_ACCESS_KEY_SECRET, CXONE_CLIENT_ID and CXONE_CLIENT_SECRET',
      ),
    ];
  }
  const client = cxone.platform as PlatformClient;
  const signal = AbortSignal.timeout(60_000);
  const checks: Check[] = [];
  try {
    try {
      const { tenantId, apiEndpoint } = await client.connect({ signal });
      checks.push({
        name: 'login',
        ok: true,
        detail: `logged in at ${config.authUrl} with access key ${config.accessKeyId ?? ''} (tenant ${tenantId})`,
      });
      checks.push({ name: 'tenant', ok: true, detail: `the tenant's API is at ${apiEndpoint}` });
    } catch (err) {
      checks.push(failure('login', err, loginFix(err)));
      return checks;
    }
    try {
      const pages = client.completedContacts(
        { startDate: new Date(Date.now() - 3_600_000), endDate: new Date(), top: 1 },
        { signal },
      );
      // One page is enough to know the listing works.
      for await (const page of pages) {
        checks.push({
          name: 'listing',
          ok: true,
          detail: `contacts/completed answers (${page.totalRecords ?? page.contacts.length} contact(s) in the last hour)`,
        });
        break;
      }
      if (!checks.some((c) => c.name === 'listing')) {
        checks.push({
          name: 'listing',
          ok: true,
          detail: 'contacts/completed answers (no contact in the last hour)',
        });
      }
    } catch (err) {
      checks.push(
        failure(
          'listing',
          err,
          err instanceof CxrecError && err.code === 'permission_missing'
            ? "give the access key's user a role with the Reporting permission: Admin > Security > Roles and Permissions"
            : 'check CXONE_API_VERSION and that this machine can reach the API host',
        ),
      );
    }
    try {
      const probe = await client.probePlayback({ signal });
      checks.push(
        probe.granted
          ? { name: 'playback', ok: true, detail: 'media playback is permitted' }
          : {
              name: 'playback',
              ok: false,
              detail: probe.reason,
              fix: `give the access key's user a role with "${playbackPermission}": Admin > Security > Roles and Permissions`,
            },
      );
    } catch (err) {
      checks.push(failure('playback', err, 'check that this machine can reach the API host'));
    }
    return checks;
  } finally {
    await cxone.close();
  }
}

/** A check that failed on `err`: its message, and what to do about it. */
function failure(name: string, err: unknown, fix: string): Check {
  return { name, ok: false, detail: describeError(err).message, fix };
}

function loginFix(err: unknown): string {
  const message = describeError(err).message;
  if (err instanceof CxrecError && err.code === 'tenant_unknown') {
    return 'check CXONE_AUTH_URL: the tenant is unknown to that issuer (government tenants use https://cxone-gov.niceincontact.com)';
  }
  if (err instanceof CxrecError && err.code === 'auth_failed') {
    return /ACCESS_KEY/.test(message)
      ? 'check CXONE_ACCESS_KEY_ID and CXONE_ACCESS_KEY_SECRET (an active access key of the API user: Admin > Employees > the user > Access Keys)'
      : 'check CXONE_CLIENT_ID and CXONE_CLIENT_SECRET (the application registered with NICE for your tenant)';
  }
  return 'check CXONE_AUTH_URL and that this machine can reach it';
}

async function checkStorage(config: Config): Promise<Check> {
  try {
    const store = await openStore(config);
    try {
      await store.probe({ signal: AbortSignal.timeout(60_000) });
      return { name: 'storage', ok: true, detail: `${store.location} can be written` };
    } finally {
      await store.close?.();
    }
  } catch (err) {
    return failure('storage', err, `check CXREC_STORAGE (${config.storage}) and the credentials for it`);
  }
}

async function checkState(config: Config): Promise<Check> {
  const target = config.stateTarget;
  if (target.kind === 'sqlite') {
    const file = resolve(target.path);
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) {
      // A ledger that does not exist yet is fine if it can be created: check without creating it.
      let dir = dirname(file);
      while (
        !(await stat(dir).then(
          () => true,
          () => false,
        ))
      )
        dir = dirname(dir);
      try {
        await access(dir, constants.W_OK);
        return { name: 'state', ok: true, detail: `${file} does not exist yet and will be created` };
      } catch {
        return {
          name: 'state',
          ok: false,
          detail: `${dir} is not writable, so ${file} cannot be created`,
          fix: 'point CXREC_STATE at a writable location',
        };
      }
    }
  }
  try {
    const ledger = await openState(config);
    try {
      const counts = await ledger.counts();
      return {
        name: 'state',
        ok: true,
        detail: `${ledger.location} is usable (${counts.backlog} in backlog)`,
      };
    } finally {
      await ledger.close();
    }
  } catch (err) {
    return failure('state', err, `check CXREC_STATE (${redactUrlPassword(config.state)})`);
  }
}
