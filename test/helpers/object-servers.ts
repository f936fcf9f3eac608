/**
 * Real object servers for tests, on free loopback ports: s3rver (in process,
 * behind `S3CheckingProxy`, which holds it to what real S3 enforces) and
 * Azurite (a child process). Each test makes its own bucket or container.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';

import { S3CheckingProxy } from './s3-checking-proxy.js';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  resetOnClose: boolean;
}) => S3rverInstance;

export interface RunningS3 {
  /** The checking proxy's URL: what the store under test talks to. */
  endpoint: string;
  /** s3rver itself, bypassing the checks (for test set-up only). */
  rawEndpoint: string;
  region: string;
  /** s3rver's fixed credentials. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  proxy: S3CheckingProxy;
  stop(): Promise<void>;
}

export async function startS3rver(): Promise<RunningS3> {
  const directory = await mkdtemp(join(tmpdir(), 'cxrec-s3rver-'));
  // s3rver is CommonJS without types.
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, resetOnClose: true });
  const { port } = await server.run();
  const proxy = new S3CheckingProxy({ host: '127.0.0.1', port });
  const endpoint = await proxy.listen();
  return {
    endpoint,
    rawEndpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    proxy,
    stop: async () => {
      await proxy.close();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Azurite's published development account. */
const devAccount = 'devstoreaccount1';
const devKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface RunningAzurite {
  accountUrl: string;
  connectionString: string;
  account: string;
  accountKey: string;
  stop(): Promise<void>;
}

/** `startTimeoutMs`: how long Azurite may take to listen (a benchmark on a loaded machine waits longer). */
export async function startAzurite(startTimeoutMs = 20_000): Promise<RunningAzurite> {
  const bin = fileURLToPath(new URL('../../node_modules/azurite/dist/src/blob/main.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      bin,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--inMemoryPersistence',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--silent',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await listeningPort(child, startTimeoutMs);
  const accountUrl = `http://127.0.0.1:${port}/${devAccount}`;
  return {
    accountUrl,
    account: devAccount,
    accountKey: devKey,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${devAccount};AccountKey=${devKey};BlobEndpoint=${accountUrl};`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Azurite prints `listens on http://127.0.0.1:PORT` once it is ready. */
function listeningPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Azurite did not start within ${timeoutMs / 1000} s:\n${output}`));
    }, timeoutMs);
    const onData = (data: Buffer): void => {
      output += data.toString('utf8');
      const match = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited with ${String(code)} before listening:\n${output}`));
    });
  });
}

/** A bucket of its own on a running s3rver: the settings that point cxrec at it, and a client for set-up and reads. */
export interface TestBucket {
  bucket: string;
  /** Talks to s3rver itself, past the proxy's checks and tracking. */
  admin: S3Client;
  /** `CXREC_STORAGE=s3://bucket/prefix` and the AWS settings, through the checking proxy unless `raw`. */
  env: Record<string, string>;
}

export async function createTestBucket(
  s3: RunningS3,
  options: { name: string; prefix: string; raw?: boolean },
): Promise<TestBucket> {
  const bucket = `${options.name}-${randomBytes(4).toString('hex')}`;
  const admin = new S3Client({
    endpoint: s3.rawEndpoint,
    region: s3.region,
    credentials: s3.credentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    bucket,
    admin,
    env: {
      CXREC_STORAGE: `s3://${bucket}/${options.prefix}`,
      AWS_ENDPOINT_URL_S3: options.raw === true ? s3.rawEndpoint : s3.endpoint,
      CXREC_S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: s3.region,
      AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    },
  };
}

/** A container of its own on a running Azurite, and the settings that point cxrec at `azblob://container/prefix`. */
export async function createTestContainer(
  azurite: RunningAzurite,
  options: { name: string; prefix: string },
): Promise<{ container: string; admin: ContainerClient; env: Record<string, string> }> {
  const container = `${options.name}-${randomBytes(4).toString('hex')}`;
  const admin = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
    container,
  );
  await admin.create();
  return {
    container,
    admin,
    env: {
      CXREC_STORAGE: `azblob://${container}/${options.prefix}`,
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    },
  };
}
