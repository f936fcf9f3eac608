/**
 * Every setting of the CLI contract, parsed and validated once. Settings come
 * from the environment and, optionally, a YAML file named by `--config`
 * whose keys are the same variable names; the environment wins. A bad value
 * stops the command with exit 2 and one line per problem that names the
 * variable, says what is wrong and gives an example. Secret values are never
 * echoed.
 */
import { isIP } from 'node:net';

import { z } from 'zod';

import { readConfigFile } from './config-file.js';
import { CxrecError } from './errors.js';
import { redactUrlPassword } from './redact.js';
import { channels, type Channel } from './state/ledger.js';
import { layouts, type Layout } from './storage/keys.js';
import { urlSchemeProblem } from './url-policy.js';

export type StorageTarget =
  | { kind: 'local'; root: string }
  | { kind: 's3'; bucket: string; prefix: string }
  | { kind: 'azblob'; container: string; prefix: string };

/** Where the ledger and the SQL-backed rate budgets live (`CXREC_STATE`). */
export type StateTarget =
  { kind: 'sqlite'; path: string } | { kind: 'memory' } | { kind: 'postgres'; url: string };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Which CXone API family the tenant is spoken to in (`CXONE_DIALECT`). */
export type Dialect = 'recording-api' | 'platform';

export interface Config {
  /**
   * `CXONE_DIALECT`: `platform` (cxone-platform-api.md, what real tenants
   * serve) or `recording-api` (cxone-api.md). Unset, `platform` when
   * `CXONE_ACCESS_KEY_ID` is set.
   */
  dialect: Dialect;
  /**
   * Tenant API base URL without a trailing slash; `undefined` when not set
   * (see `requireCxone`). For `platform` it overrides tenant discovery.
   */
  apiUrl: string | undefined;
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** `platform`: the issuer (`CXONE_AUTH_URL`), without a trailing slash. */
  authUrl: string;
  /** `platform`: the API user's access key (`CXONE_ACCESS_KEY_ID`). */
  accessKeyId: string | undefined;
  accessKeySecret: string | undefined;
  /** `platform`: the classic APIs' version segment, e.g. `v30.0`. */
  apiVersion: string;
  /** `platform`: media-playback requests per `playbackWindowSeconds`, for the whole tenant. */
  playbackLimit: number;
  playbackWindowSeconds: number;
  /** The raw `CXREC_STORAGE` value, as `openObjectStore` takes it. */
  storage: string;
  storageTarget: StorageTarget;
  /** The raw `CXREC_STATE` value, for messages (through `redactUrlPassword`: it may carry a password). */
  state: string;
  stateTarget: StateTarget;
  rateLimitPerMinute: number;
  concurrency: number;
  channels: Channel[];
  channelFallback: 'combined' | 'none';
  pollSeconds: number;
  maxProcessingMinutes: number;
  backoffSeconds: number;
  retentionDays: number;
  discoverSeconds: number;
  /** Host patterns presigned media URLs may point to. */
  mediaHosts: string[];
  /**
   * `CXREC_MEDIA_HOSTS` was not set, so `mediaHosts` is the default: the
   * platform dialect then also allows the API host it discovers.
   */
  mediaHostsDefaulted: boolean;
  sidecars: boolean;
  /** `CXREC_LAYOUT`: `flat` (`recordings/{key}_{channel}.{ext}`) or `date` (`recordings/YYYY/MM/DD/…`). */
  layout: Layout;
  s3Sse: 'AES256' | 'aws:kms' | undefined;
  s3KmsKeyId: string | undefined;
  s3ForcePathStyle: boolean;
  httpPort: number | undefined;
  /** Where to POST notifications; its path may hold a webhook token: never log it whole. */
  notifyUrl: string | undefined;
  /** The address `CXREC_HTTP_PORT` (and `cxrec ui`) listens on. */
  httpHost: string;
  logLevel: LogLevel;
}

/** The settings this module reads, in the contract's order. */
export const settingNames = [
  'CXONE_DIALECT',
  'CXONE_API_URL',
  'CXONE_CLIENT_ID',
  'CXONE_CLIENT_SECRET',
  'CXONE_AUTH_URL',
  'CXONE_ACCESS_KEY_ID',
  'CXONE_ACCESS_KEY_SECRET',
  'CXONE_API_VERSION',
  'CXREC_PLAYBACK_LIMIT',
  'CXREC_PLAYBACK_WINDOW_SECONDS',
  'CXREC_STORAGE',
  'CXREC_STATE',
  'CXREC_RATE_LIMIT',
  'CXREC_CONCURRENCY',
  'CXREC_CHANNELS',
  'CXREC_CHANNEL_FALLBACK',
  'CXREC_POLL_SECONDS',
  'CXREC_MAX_PROCESSING_MINUTES',
  'CXREC_BACKOFF_SECONDS',
  'CXREC_RETENTION_DAYS',
  'CXREC_DISCOVER_SECONDS',
  'CXREC_MEDIA_HOSTS',
  'CXREC_SIDECARS',
  'CXREC_LAYOUT',
  'CXREC_S3_SSE',
  'CXREC_S3_KMS_KEY_ID',
  'CXREC_S3_FORCE_PATH_STYLE',
  'CXREC_HTTP_PORT',
  'CXREC_NOTIFY_URL',
  'CXREC_HTTP_HOST',
  'CXREC_LOG_LEVEL',
] as const;
type SettingName = (typeof settingNames)[number];

/** Standard SDK variables the YAML file may also carry (the SDKs read them from the environment). */
const passThroughNames = [
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_ENDPOINT_URL_S3',
  'AZURE_STORAGE_CONNECTION_STRING',
  'AZURE_STORAGE_ACCOUNT_URL',
  'AZURE_STORAGE_SAS_TOKEN',
] as const;

const secretNames = new Set<string>([
  'CXONE_CLIENT_SECRET',
  'CXONE_ACCESS_KEY_SECRET',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AZURE_STORAGE_CONNECTION_STRING',
  'AZURE_STORAGE_SAS_TOKEN',
  // A webhook URL's path is its token.
  'CXREC_NOTIFY_URL',
]);

const examples: Record<SettingName, string> = {
  CXONE_API_URL: 'https://api.nice-incontact.com',
  CXONE_CLIENT_ID: 'my-api-client',
  CXONE_CLIENT_SECRET: '<the API client secret>',
  CXONE_DIALECT: 'platform',
  CXONE_AUTH_URL: 'https://cxone.niceincontact.com',
  CXONE_ACCESS_KEY_ID: '<the access key id of the API user>',
  CXONE_ACCESS_KEY_SECRET: '<the access key secret>',
  CXONE_API_VERSION: 'v30.0',
  CXREC_PLAYBACK_LIMIT: '150',
  CXREC_PLAYBACK_WINDOW_SECONDS: '300',
  CXREC_STORAGE: 's3://my-bucket/cxone',
  CXREC_STATE: './cxrec-state.db',
  CXREC_RATE_LIMIT: '50',
  CXREC_CONCURRENCY: '4',
  CXREC_CHANNELS: 'combined,agent',
  CXREC_CHANNEL_FALLBACK: 'combined',
  CXREC_POLL_SECONDS: '30',
  CXREC_MAX_PROCESSING_MINUTES: '240',
  CXREC_BACKOFF_SECONDS: '2',
  CXREC_RETENTION_DAYS: '90',
  CXREC_DISCOVER_SECONDS: '60',
  CXREC_MEDIA_HOSTS: '*.amazonaws.com,media.example.com',
  CXREC_SIDECARS: 'true',
  CXREC_LAYOUT: 'date',
  CXREC_S3_SSE: 'aws:kms',
  CXREC_S3_KMS_KEY_ID: 'arn:aws:kms:us-east-1:111122223333:key/abcd-1234',
  CXREC_S3_FORCE_PATH_STYLE: 'true',
  CXREC_HTTP_PORT: '9464',
  CXREC_NOTIFY_URL: 'https://hooks.slack.com/services/<your webhook>',
  CXREC_HTTP_HOST: '0.0.0.0',
  CXREC_LOG_LEVEL: 'info',
};

const positiveNumber = (what: string, max: number) =>
  z
    .string()
    .trim()
    .regex(/^(\d+(\.\d*)?|\.\d+)$/, `must be a positive number (${what}; fractions such as 0.05 are fine)`)
    .transform(Number)
    .refine((n) => n > 0 && n <= max, `must be greater than 0 and at most ${max} (${what})`);

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`);

const booleanSetting = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), 'must be true or false')
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const apiUrl = z
  .string()
  .trim()
  .superRefine((v, ctx) => {
    const problem = urlSchemeProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .transform((v) => v.replace(/\/+$/, ''));

const channelList = z
  .string()
  .transform((v) => v.split(',').map((c) => c.trim().toLowerCase()))
  .superRefine((list, ctx) => {
    const unknown = list.filter((c) => !(channels as readonly string[]).includes(c));
    if (list.length === 0 || list.every((c) => c === '')) {
      ctx.addIssue({ code: 'custom', message: `must name at least one of ${channels.join(', ')}` });
    } else if (unknown.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `has unknown channel(s) ${unknown.map((c) => JSON.stringify(c)).join(', ')}; allowed: ${channels.join(', ')}`,
      });
    }
  })
  .transform((list) => [...new Set(list)] as Channel[]);

const hostPatterns = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
  )
  .superRefine((list, ctx) => {
    if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'must name at least one host pattern' });
    for (const p of list) {
      if (!/^(\*\.)?[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(p)) {
        ctx.addIssue({ code: 'custom', message: `has an invalid host pattern ${JSON.stringify(p)}` });
      }
    }
  });

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/**
 * A listening address: an IPv4 or IPv6 literal (`0.0.0.0` and `::` for every
 * interface) or a host name; no scheme, port, brackets or path.
 */
const hostNamePattern =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const listenHost = z
  .string()
  .trim()
  .refine(
    (v) => isIP(v) !== 0 || (hostNamePattern.test(v) && !/^[\d.]+$/.test(v)),
    'must be an IP address (0.0.0.0 or :: for every interface) or a host name, without scheme or port',
  );

const schema = z.object({
  CXONE_DIALECT: z.enum(['recording-api', 'platform'], 'must be recording-api or platform').optional(),
  CXONE_API_URL: apiUrl.optional(),
  CXONE_CLIENT_ID: nonEmpty.optional(),
  CXONE_CLIENT_SECRET: nonEmpty.optional(),
  CXONE_AUTH_URL: apiUrl.default('https://cxone.niceincontact.com'),
  CXONE_ACCESS_KEY_ID: nonEmpty.optional(),
  CXONE_ACCESS_KEY_SECRET: nonEmpty.optional(),
  CXONE_API_VERSION: z
    .string()
    .trim()
    .regex(/^v\d+\.\d+$/, 'must be a version segment such as v30.0')
    .default('v30.0'),
  CXREC_PLAYBACK_LIMIT: wholeNumber(1, 1_000_000).default(150),
  CXREC_PLAYBACK_WINDOW_SECONDS: positiveNumber('seconds', 86_400).default(300),
  CXREC_STORAGE: nonEmpty.default('./recordings'),
  CXREC_STATE: nonEmpty.default('./cxrec-state.db'),
  CXREC_RATE_LIMIT: positiveNumber('requests per minute for the whole tenant', 1_000_000).default(50),
  CXREC_CONCURRENCY: wholeNumber(1, 256).default(4),
  CXREC_CHANNELS: channelList.default(['combined']),
  CXREC_CHANNEL_FALLBACK: z.enum(['combined', 'none'], 'must be combined or none').default('combined'),
  CXREC_POLL_SECONDS: positiveNumber('seconds', 86_400).default(30),
  CXREC_MAX_PROCESSING_MINUTES: positiveNumber('minutes', 525_600).default(240),
  CXREC_BACKOFF_SECONDS: positiveNumber('seconds', 3_600).default(2),
  CXREC_RETENTION_DAYS: positiveNumber('days', 36_500).default(90),
  CXREC_DISCOVER_SECONDS: positiveNumber('seconds', 86_400).default(60),
  CXREC_MEDIA_HOSTS: hostPatterns.optional(),
  CXREC_SIDECARS: booleanSetting.default(false),
  CXREC_LAYOUT: z.enum(layouts, `must be ${layouts.join(' or ')}`).default('flat'),
  CXREC_S3_SSE: z.enum(['AES256', 'aws:kms'], 'must be AES256 or aws:kms').optional(),
  CXREC_S3_KMS_KEY_ID: nonEmpty.optional(),
  CXREC_S3_FORCE_PATH_STYLE: booleanSetting.default(false),
  CXREC_HTTP_PORT: wholeNumber(0, 65_535).optional(),
  CXREC_NOTIFY_URL: z
    .string()
    .trim()
    .superRefine((v, ctx) => {
      const problem = urlSchemeProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
      else if (new URL(v).username !== '' || new URL(v).password !== '')
        ctx.addIssue({ code: 'custom', message: 'must not carry a user name or password' });
    })
    .optional(),
  CXREC_HTTP_HOST: listenHost.default('127.0.0.1'),
  CXREC_LOG_LEVEL: z
    .enum(['debug', 'info', 'warn', 'error'], 'must be debug, info, warn or error')
    .default('info'),
});

export interface LoadConfigOptions {
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /** A YAML file of settings (`--config`). */
  configFile?: string | undefined;
}

/**
 * Reads, validates and returns every setting. Throws `CxrecError('config_invalid')`
 * (exit 2) listing every problem found. Standard AWS/Azure variables from the
 * YAML file are copied into `env` when the environment lacks them, so the
 * SDKs see them the way they always read them.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const fromFile =
    options.configFile === undefined
      ? {}
      : readConfigFile(options.configFile, new Set<string>([...settingNames, ...passThroughNames]));
  for (const name of passThroughNames) {
    const v = fromFile[name];
    if (v !== undefined && env[name] === undefined) env[name] = v;
  }
  const raw: Record<string, string> = {};
  for (const name of settingNames) {
    // An empty variable counts as unset, as shells make it easy to export one by
    // accident: the file's value (or the default) applies then.
    const fromEnv = env[name];
    const value = fromEnv === undefined || fromEnv === '' ? fromFile[name] : fromEnv;
    if (value !== undefined && value !== '') raw[name] = value;
  }

  const parsed = schema.safeParse(raw);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0]) as SettingName;
      problems.push(describeProblem(name, raw[name], issue.message));
    }
    throw configError(problems);
  }
  const s = parsed.data;

  let storageTarget: StorageTarget | undefined;
  try {
    storageTarget = parseStorageTarget(s.CXREC_STORAGE);
  } catch (err) {
    problems.push(describeProblem('CXREC_STORAGE', s.CXREC_STORAGE, (err as Error).message));
  }
  let stateTarget: StateTarget | undefined;
  try {
    stateTarget = parseStateTarget(s.CXREC_STATE);
  } catch (err) {
    problems.push(describeProblem('CXREC_STATE', redactUrlPassword(s.CXREC_STATE), (err as Error).message));
  }
  if (s.CXREC_S3_KMS_KEY_ID !== undefined && s.CXREC_S3_SSE !== 'aws:kms') {
    problems.push(
      describeProblem('CXREC_S3_KMS_KEY_ID', s.CXREC_S3_KMS_KEY_ID, 'is set but CXREC_S3_SSE is not aws:kms'),
    );
  }
  const s3Endpoint = env.AWS_ENDPOINT_URL_S3;
  if (storageTarget?.kind === 's3' && s3Endpoint) {
    const problem = urlSchemeProblem(s3Endpoint);
    if (problem)
      problems.push(`AWS_ENDPOINT_URL_S3 ${problem} (example: AWS_ENDPOINT_URL_S3=https://s3.example.com)`);
  }
  if (problems.length > 0 || storageTarget === undefined || stateTarget === undefined)
    throw configError(problems);

  const apiHost = s.CXONE_API_URL === undefined ? undefined : new URL(s.CXONE_API_URL).hostname;
  return {
    dialect: s.CXONE_DIALECT ?? (s.CXONE_ACCESS_KEY_ID === undefined ? 'recording-api' : 'platform'),
    apiUrl: s.CXONE_API_URL,
    clientId: s.CXONE_CLIENT_ID,
    clientSecret: s.CXONE_CLIENT_SECRET,
    authUrl: s.CXONE_AUTH_URL,
    accessKeyId: s.CXONE_ACCESS_KEY_ID,
    accessKeySecret: s.CXONE_ACCESS_KEY_SECRET,
    apiVersion: s.CXONE_API_VERSION,
    playbackLimit: s.CXREC_PLAYBACK_LIMIT,
    playbackWindowSeconds: s.CXREC_PLAYBACK_WINDOW_SECONDS,
    storage: s.CXREC_STORAGE,
    storageTarget,
    state: s.CXREC_STATE,
    stateTarget,
    rateLimitPerMinute: s.CXREC_RATE_LIMIT,
    concurrency: s.CXREC_CONCURRENCY,
    channels: s.CXREC_CHANNELS,
    channelFallback: s.CXREC_CHANNEL_FALLBACK,
    pollSeconds: s.CXREC_POLL_SECONDS,
    maxProcessingMinutes: s.CXREC_MAX_PROCESSING_MINUTES,
    backoffSeconds: s.CXREC_BACKOFF_SECONDS,
    retentionDays: s.CXREC_RETENTION_DAYS,
    discoverSeconds: s.CXREC_DISCOVER_SECONDS,
    mediaHosts: s.CXREC_MEDIA_HOSTS ?? ['*.amazonaws.com', ...(apiHost === undefined ? [] : [apiHost])],
    mediaHostsDefaulted: s.CXREC_MEDIA_HOSTS === undefined,
    sidecars: s.CXREC_SIDECARS,
    layout: s.CXREC_LAYOUT,
    s3Sse: s.CXREC_S3_SSE,
    s3KmsKeyId: s.CXREC_S3_KMS_KEY_ID,
    s3ForcePathStyle: s.CXREC_S3_FORCE_PATH_STYLE,
    httpPort: s.CXREC_HTTP_PORT,
    notifyUrl: s.CXREC_NOTIFY_URL,
    httpHost: s.CXREC_HTTP_HOST,
    logLevel: s.CXREC_LOG_LEVEL,
  };
}

export interface CxoneSettings {
  apiUrl: string;
  clientId: string;
  clientSecret: string;
}

/** The CXone settings, for commands that talk to the tenant; exit 2 naming each one missing. */
export function requireCxone(config: Config): CxoneSettings {
  const { apiUrl, clientId, clientSecret } = config;
  const missing: string[] = [];
  if (apiUrl === undefined) missing.push(describeProblem('CXONE_API_URL', undefined, 'is required'));
  if (clientId === undefined) missing.push(describeProblem('CXONE_CLIENT_ID', undefined, 'is required'));
  if (clientSecret === undefined)
    missing.push(describeProblem('CXONE_CLIENT_SECRET', undefined, 'is required'));
  if (apiUrl === undefined || clientId === undefined || clientSecret === undefined)
    throw configError(missing);
  return { apiUrl, clientId, clientSecret };
}

export interface PlatformSettings {
  authUrl: string;
  accessKeyId: string;
  accessKeySecret: string;
  clientId: string;
  clientSecret: string;
  /** `CXONE_API_URL` when set: skips tenant discovery. */
  apiUrl: string | undefined;
  apiVersion: string;
}

/** The platform dialect's settings, for commands that talk to the tenant; exit 2 naming each one missing. */
export function requirePlatform(config: Config): PlatformSettings {
  const { accessKeyId, accessKeySecret, clientId, clientSecret } = config;
  const missing: string[] = [];
  const required: [SettingName, string | undefined][] = [
    ['CXONE_ACCESS_KEY_ID', accessKeyId],
    ['CXONE_ACCESS_KEY_SECRET', accessKeySecret],
    ['CXONE_CLIENT_ID', clientId],
    ['CXONE_CLIENT_SECRET', clientSecret],
  ];
  for (const [name, value] of required) {
    if (value === undefined)
      missing.push(describeProblem(name, undefined, 'is required for CXONE_DIALECT=platform'));
  }
  if (
    accessKeyId === undefined ||
    accessKeySecret === undefined ||
    clientId === undefined ||
    clientSecret === undefined
  )
    throw configError(missing);
  return {
    authUrl: config.authUrl,
    accessKeyId,
    accessKeySecret,
    clientId,
    clientSecret,
    apiUrl: config.apiUrl,
    apiVersion: config.apiVersion,
  };
}

/**
 * The lower-case scheme of `value` when it is written as a URL
 * (`scheme://…`), else `undefined`: a path, even one with a colon such as
 * `C:\\data`, has none.
 */
export function urlScheme(value: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
}

export function parseStorageTarget(value: string): StorageTarget {
  const scheme = urlScheme(value);
  if (scheme === undefined) return { kind: 'local', root: value };
  if (scheme === 'file') {
    const url = new URL(value);
    if (url.host !== '' && url.host !== 'localhost')
      throw new Error('must be file:///absolute/path (no host)');
    return { kind: 'local', root: decodeURIComponent(url.pathname) };
  }
  if (scheme === 's3' || scheme === 'azblob') {
    const rest = value.slice(scheme.length + 3);
    const slash = rest.indexOf('/');
    const name = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = normalisePrefix(slash === -1 ? '' : rest.slice(slash + 1));
    if (scheme === 's3') {
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || name.includes('..')) {
        throw new Error(
          `has an invalid S3 bucket name ${JSON.stringify(name)} (3-63 lowercase letters, digits, . and -)`,
        );
      }
      return { kind: 's3', bucket: name, prefix };
    }
    if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(name)) {
      throw new Error(
        `has an invalid Azure container name ${JSON.stringify(name)} (3-63 lowercase letters, digits and single hyphens)`,
      );
    }
    return { kind: 'azblob', container: name, prefix };
  }
  throw new Error(
    `has an unknown scheme ${scheme}:// (use a path, file:///dir, s3://bucket/prefix or azblob://container/prefix)`,
  );
}

/** `a/b/` for `a/b`, `/a/b/` or `a//b/`; `''` for no prefix. Refuses `..` so nothing lands outside it. */
function normalisePrefix(prefix: string): string {
  const parts = prefix.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '..' || p === '.')) throw new Error('has a prefix with a . or .. segment');
  return parts.length === 0 ? '' : `${parts.join('/')}/`;
}

/**
 * `CXREC_STATE`: `:memory:`, a SQLite file path, or a `postgres://` /
 * `postgresql://` URL. Any other scheme is refused rather than taken for a
 * SQLite file named like a URL (a typo'd `postgress://` would otherwise
 * quietly start an empty local ledger).
 */
export function parseStateTarget(value: string): StateTarget {
  const scheme = urlScheme(value);
  if (scheme === undefined)
    return value === ':memory:' ? { kind: 'memory' } : { kind: 'sqlite', path: value };
  if (scheme === 'postgres' || scheme === 'postgresql') {
    try {
      new URL(value);
    } catch {
      throw stateTargetError('is not a valid postgres:// URL');
    }
    return { kind: 'postgres', url: value };
  }
  throw stateTargetError(
    `uses the unknown scheme ${scheme}://; give a SQLite file path or a postgres:// URL`,
  );
}

/** Worded to follow the setting's name, as `loadConfig` prints it. */
function stateTargetError(problem: string): CxrecError {
  return new CxrecError('config_invalid', problem, { context: { setting: 'CXREC_STATE' } });
}

function describeProblem(name: SettingName, value: string | undefined, message: string): string {
  const shown =
    value === undefined
      ? ''
      : secretNames.has(name)
        ? ' (value not shown)'
        : `, got ${JSON.stringify(value)}`;
  return `${name} ${message}${shown} (example: ${name}=${examples[name]})`;
}

function configError(problems: readonly string[]): CxrecError {
  return new CxrecError('config_invalid', `invalid settings:\n  ${problems.join('\n  ')}`);
}
