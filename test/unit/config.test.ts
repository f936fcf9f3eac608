import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { loadConfig, parseStorageTarget, requireCxone, requirePlatform } from '../../src/config.js';
import { CxrecError } from '../../src/errors.js';

const base = {
  CXONE_API_URL: 'https://api.example.com/',
  CXONE_CLIENT_ID: 'client',
  CXONE_CLIENT_SECRET: 'super-secret-value',
};

function configError(fn: () => unknown): CxrecError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CxrecError);
    assert.equal(err.code, 'config_invalid');
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail('expected a config error');
}

describe('loadConfig', () => {
  test('defaults follow the CLI contract', () => {
    const c = loadConfig({ env: { ...base } });
    assert.equal(c.apiUrl, 'https://api.example.com');
    assert.equal(c.storage, './recordings');
    assert.deepEqual(c.storageTarget, { kind: 'local', root: './recordings' });
    assert.equal(c.state, './cxrec-state.db');
    assert.equal(c.rateLimitPerMinute, 50);
    assert.equal(c.concurrency, 4);
    assert.deepEqual(c.channels, ['combined']);
    assert.equal(c.channelFallback, 'combined');
    assert.equal(c.pollSeconds, 30);
    assert.equal(c.maxProcessingMinutes, 240);
    assert.equal(c.backoffSeconds, 2);
    assert.equal(c.retentionDays, 90);
    assert.equal(c.discoverSeconds, 60);
    assert.deepEqual(c.mediaHosts, ['*.amazonaws.com', 'api.example.com']);
    assert.equal(c.sidecars, false);
    assert.equal(c.layout, 'flat');
    assert.equal(c.s3ForcePathStyle, false);
    assert.equal(c.httpPort, undefined);
    assert.equal(c.logLevel, 'info');
  });

  test('every duration takes fractions', () => {
    const c = loadConfig({
      env: {
        ...base,
        CXREC_POLL_SECONDS: '0.05',
        CXREC_MAX_PROCESSING_MINUTES: '0.5',
        CXREC_BACKOFF_SECONDS: '.01',
        CXREC_RETENTION_DAYS: '0.25',
        CXREC_DISCOVER_SECONDS: '1.5',
      },
    });
    assert.equal(c.pollSeconds, 0.05);
    assert.equal(c.maxProcessingMinutes, 0.5);
    assert.equal(c.backoffSeconds, 0.01);
    assert.equal(c.retentionDays, 0.25);
    assert.equal(c.discoverSeconds, 1.5);
  });

  test('a bad value names the variable, the problem, the value and an example', () => {
    const err = configError(() => loadConfig({ env: { ...base, CXREC_CONCURRENCY: 'lots' } }));
    assert.match(err.message, /CXREC_CONCURRENCY must be a whole number from 1 to 256, got "lots"/);
    assert.match(err.message, /example: CXREC_CONCURRENCY=4/);
  });

  test('CXREC_LAYOUT is flat or date, and a bad value names it and both values', () => {
    assert.equal(loadConfig({ env: { ...base, CXREC_LAYOUT: 'date' } }).layout, 'date');
    assert.equal(loadConfig({ env: { ...base, CXREC_LAYOUT: 'flat' } }).layout, 'flat');
    const err = configError(() => loadConfig({ env: { ...base, CXREC_LAYOUT: 'daily' } }));
    assert.match(err.message, /CXREC_LAYOUT must be flat or date, got "daily"/);
    assert.match(err.message, /example: CXREC_LAYOUT=date/);
  });

  test('every problem is reported at once', () => {
    const err = configError(() =>
      loadConfig({
        env: { ...base, CXREC_POLL_SECONDS: '-1', CXREC_CHANNELS: 'combined,video', CXREC_LOG_LEVEL: 'loud' },
      }),
    );
    assert.match(err.message, /CXREC_POLL_SECONDS/);
    assert.match(err.message, /CXREC_CHANNELS has unknown channel\(s\) "video"/);
    assert.match(err.message, /CXREC_LOG_LEVEL must be debug, info, warn or error/);
  });

  test('plain http is refused except on loopback', () => {
    const err = configError(() => loadConfig({ env: { ...base, CXONE_API_URL: 'http://api.example.com' } }));
    assert.match(err.message, /CXONE_API_URL uses plain http:\/\/ on a non-loopback host/);
    assert.equal(
      loadConfig({ env: { ...base, CXONE_API_URL: 'http://127.0.0.1:8080' } }).apiUrl,
      'http://127.0.0.1:8080',
    );
    assert.equal(
      loadConfig({ env: { ...base, CXONE_API_URL: 'http://[::1]:8080' } }).apiUrl,
      'http://[::1]:8080',
    );
    assert.equal(
      loadConfig({ env: { ...base, CXONE_API_URL: 'http://localhost:1' } }).apiUrl,
      'http://localhost:1',
    );
  });

  test('a secret is never echoed', () => {
    const err = configError(() => loadConfig({ env: { ...base, CXONE_CLIENT_SECRET: '   ' } }));
    assert.match(err.message, /CXONE_CLIENT_SECRET must not be empty \(value not shown\)/);
  });

  test('missing CXone settings are named when a command needs them', () => {
    const c = loadConfig({ env: {} });
    const err = configError(() => requireCxone(c));
    assert.match(err.message, /CXONE_API_URL is required/);
    assert.match(err.message, /CXONE_CLIENT_ID is required/);
    assert.match(err.message, /CXONE_CLIENT_SECRET is required/);
  });

  test('the KMS key needs aws:kms', () => {
    const err = configError(() => loadConfig({ env: { ...base, CXREC_S3_KMS_KEY_ID: 'k' } }));
    assert.match(err.message, /CXREC_S3_KMS_KEY_ID is set but CXREC_S3_SSE is not aws:kms/);
  });

  test('a YAML file supplies settings and the environment wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cxrec-config-'));
    const file = join(dir, 'cxrec.yaml');
    writeFileSync(
      file,
      'CXREC_CONCURRENCY: 8\nCXREC_CHANNELS: [combined, agent]\nCXREC_SIDECARS: true\nCXREC_RATE_LIMIT: 40\n',
    );
    const c = loadConfig({ env: { ...base, CXREC_RATE_LIMIT: '30' }, configFile: file });
    assert.equal(c.concurrency, 8);
    assert.deepEqual(c.channels, ['combined', 'agent']);
    assert.equal(c.sidecars, true);
    assert.equal(c.rateLimitPerMinute, 30);
  });

  test('a YAML file with an unknown key or bad syntax is refused with the file named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cxrec-config-'));
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, 'CXREC_CONCURENCY: 8\n');
    assert.match(
      configError(() => loadConfig({ env: base, configFile: typo })).message,
      /typo\.yaml:\n.*CXREC_CONCURENCY is not a cxrec setting/,
    );
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'a: [1, 2\n');
    assert.match(
      configError(() => loadConfig({ env: base, configFile: broken })).message,
      /broken\.yaml: not valid YAML/,
    );
    assert.match(
      configError(() => loadConfig({ env: base, configFile: join(dir, 'none.yaml') })).message,
      /cannot read the file \(ENOENT\)/,
    );
  });
});

describe('parseStorageTarget', () => {
  test('paths, file URLs and buckets', () => {
    assert.deepEqual(parseStorageTarget('/data/rec'), { kind: 'local', root: '/data/rec' });
    assert.deepEqual(parseStorageTarget('file:///data/my%20rec'), { kind: 'local', root: '/data/my rec' });
    assert.deepEqual(parseStorageTarget('s3://bucket'), { kind: 's3', bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseStorageTarget('s3://bucket/'), { kind: 's3', bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseStorageTarget('s3://bucket/a/b'), { kind: 's3', bucket: 'bucket', prefix: 'a/b/' });
    assert.deepEqual(parseStorageTarget('s3://bucket/a/b/'), {
      kind: 's3',
      bucket: 'bucket',
      prefix: 'a/b/',
    });
    assert.deepEqual(parseStorageTarget('azblob://calls/x'), {
      kind: 'azblob',
      container: 'calls',
      prefix: 'x/',
    });
  });

  test('bad targets are explained', () => {
    assert.throws(() => parseStorageTarget('gs://b/p'), /unknown scheme gs:\/\//);
    assert.throws(() => parseStorageTarget('s3://B_ad/p'), /invalid S3 bucket name/);
    assert.throws(() => parseStorageTarget('s3://bucket/../x'), /\.\. segment/);
    assert.throws(() => parseStorageTarget('azblob://a--b/x'), /invalid Azure container name/);
  });
});

describe('the platform dialect settings', () => {
  const platform = {
    CXONE_ACCESS_KEY_ID: 'key-id',
    CXONE_ACCESS_KEY_SECRET: 'a+b/c=d-secret',
    CXONE_CLIENT_ID: 'app',
    CXONE_CLIENT_SECRET: 'app-secret',
  };

  test('an access key picks the platform dialect, with the contract defaults', () => {
    const c = loadConfig({ env: { ...platform } });
    assert.equal(c.dialect, 'platform');
    assert.equal(c.authUrl, 'https://cxone.niceincontact.com');
    assert.equal(c.apiUrl, undefined);
    assert.equal(c.apiVersion, 'v30.0');
    assert.equal(c.playbackLimit, 150);
    assert.equal(c.playbackWindowSeconds, 300);
    assert.equal(c.mediaHostsDefaulted, true);
    assert.deepEqual(
      { ...requirePlatform(c) },
      {
        authUrl: 'https://cxone.niceincontact.com',
        accessKeyId: 'key-id',
        accessKeySecret: 'a+b/c=d-secret',
        clientId: 'app',
        clientSecret: 'app-secret',
        apiUrl: undefined,
        apiVersion: 'v30.0',
      },
    );
  });

  test('without an access key the dialect is recording-api, and CXONE_DIALECT wins', () => {
    assert.equal(loadConfig({ env: { ...base } }).dialect, 'recording-api');
    assert.equal(
      loadConfig({ env: { ...platform, CXONE_DIALECT: 'recording-api' } }).dialect,
      'recording-api',
    );
    assert.equal(loadConfig({ env: { ...base, CXONE_DIALECT: 'platform' } }).dialect, 'platform');
    assert.equal(
      loadConfig({ env: { ...base, CXREC_MEDIA_HOSTS: 'x.example.com' } }).mediaHostsDefaulted,
      false,
    );
  });

  test('bad values name the setting and never echo the access key secret', () => {
    const err = configError(() =>
      loadConfig({
        env: {
          ...platform,
          CXONE_DIALECT: 'nice',
          CXONE_AUTH_URL: 'http://issuer.example.com',
          CXONE_API_VERSION: '30',
          CXREC_PLAYBACK_LIMIT: '1.5',
          CXREC_PLAYBACK_WINDOW_SECONDS: '0',
        },
      }),
    );
    for (const name of [
      'CXONE_DIALECT',
      'CXONE_AUTH_URL',
      'CXONE_API_VERSION',
      'CXREC_PLAYBACK_LIMIT',
      'CXREC_PLAYBACK_WINDOW_SECONDS',
    ]) {
      assert.match(err.message, new RegExp(name));
    }
    assert.doesNotMatch(err.message, /a\+b\/c=d-secret/);
  });

  test('requirePlatform names every missing credential', () => {
    const c = loadConfig({ env: { CXONE_DIALECT: 'platform' } });
    const err = configError(() => requirePlatform(c));
    for (const name of [
      'CXONE_ACCESS_KEY_ID',
      'CXONE_ACCESS_KEY_SECRET',
      'CXONE_CLIENT_ID',
      'CXONE_CLIENT_SECRET',
    ]) {
      assert.match(err.message, new RegExp(`${name} is required`));
    }
  });
});

describe('the --config file is read as text and its errors never quote it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cxrec-config-text-'));

  test('values keep the text written: leading zeros, hex, long numbers', () => {
    const file = join(dir, 'text.yaml');
    writeFileSync(
      file,
      'CXONE_API_URL: https://api.example.com\nCXONE_CLIENT_ID: 0x1F\nCXONE_CLIENT_SECRET: 0123\n' +
        'CXONE_ACCESS_KEY_ID: 123456789012345678901234567890\nCXREC_CONCURRENCY: ~\nCXREC_CHANNELS: [combined, agent]\n',
    );
    const c = loadConfig({ env: {}, configFile: file });
    assert.equal(c.clientId, '0x1F');
    assert.equal(c.clientSecret, '0123');
    assert.equal(c.accessKeyId, '123456789012345678901234567890');
    assert.equal(c.concurrency, 4, 'a plain ~ is no value');
    assert.deepEqual(c.channels, ['combined', 'agent']);
  });

  test('a malformed line holding a secret is named by setting, line and column, its text never shown', () => {
    const file = join(dir, 'leak.yaml');
    writeFileSync(file, 'CXONE_CLIENT_ID: app\nCXONE_CLIENT_SECRET: @abcSECRET123\n');
    const message = configError(() => loadConfig({ env: {}, configFile: file })).message;
    assert.match(message, /line 2, column \d+ \(setting CXONE_CLIENT_SECRET\)/);
    assert.doesNotMatch(message, /abcSECRET123/);
    const quote = join(dir, 'quote.yaml');
    writeFileSync(quote, 'CXONE_CLIENT_SECRET: "open-quote-SECRET\n');
    const unterminated = configError(() => loadConfig({ env: {}, configFile: quote })).message;
    assert.doesNotMatch(unterminated, /open-quote-SECRET/);
    assert.match(unterminated, /line \d+, column \d+/);
  });
});

describe('CXREC_NOTIFY_URL', () => {
  test('off by default; https anywhere and http on loopback are taken', () => {
    assert.equal(loadConfig({ env: { ...base } }).notifyUrl, undefined);
    const hook = 'https://hooks.example.com/services/T0/B0/token-abc';
    assert.equal(loadConfig({ env: { ...base, CXREC_NOTIFY_URL: hook } }).notifyUrl, hook);
    const local = 'http://127.0.0.1:8080/hook';
    assert.equal(loadConfig({ env: { ...base, CXREC_NOTIFY_URL: local } }).notifyUrl, local);
  });

  test('plain http off loopback, another scheme, or a user:password are refused, naming the setting, never the value', () => {
    for (const bad of [
      'http://hooks.example.com/services/token-abc',
      'ftp://hooks.example.com/token-abc',
      'https://user:token-abc@hooks.example.com/x',
      'not a url token-abc',
    ]) {
      const err = configError(() => loadConfig({ env: { ...base, CXREC_NOTIFY_URL: bad } }));
      assert.match(err.message, /CXREC_NOTIFY_URL/);
      assert.doesNotMatch(err.message, /token-abc/, bad);
    }
  });
});
