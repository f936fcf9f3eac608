/** A minimal CXone client for the simulator's own tests: raw undici, so every header and status is visible. */
import { setTimeout as sleep } from 'node:timers/promises';

import { request } from 'undici';

import type { Simulator } from '../../../src/simulator/index.js';

export interface Answer<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

export async function tokenFor(
  sim: Simulator,
  form: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<Answer<{ access_token: string; scope: string; expires_in: number; error?: string }>> {
  const res = await request(`${sim.url}/api/v2/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'cxrec-demo',
      client_secret: 'demo-secret',
      ...form,
    }).toString(),
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as never };
}

export async function accessToken(sim: Simulator): Promise<string> {
  const answer = await tokenFor(sim);
  if (answer.status !== 200) throw new Error(`token endpoint answered ${answer.status}`);
  return answer.body.access_token;
}

export async function apiCall<T = Record<string, unknown>>(
  sim: Simulator,
  token: string,
  path: string,
  options: { method?: 'GET' | 'POST'; body?: unknown } = {},
): Promise<Answer<T>> {
  const res = await request(`${sim.url}${path}`, {
    method: options.method ?? 'GET',
    headers: {
      authorization: `Bearer ${token}`,
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as T };
}

export interface SearchItem {
  recordingId: string;
  status: string;
  createdDate: string;
}
export interface SearchPage {
  recordings: SearchItem[];
  nextPageToken: string | null;
  error?: string;
}

export function search(sim: Simulator, token: string, body: unknown): Promise<Answer<SearchPage>> {
  return apiCall<SearchPage>(sim, token, '/api/v2/recording/search', { body });
}

/** Every page of a listing, following cursors. */
export async function listAll(
  sim: Simulator,
  token: string,
  body: Record<string, unknown>,
): Promise<SearchItem[]> {
  const items: SearchItem[] = [];
  let page = await search(sim, token, body);
  for (;;) {
    if (page.status !== 200) throw new Error(`search answered ${page.status} ${JSON.stringify(page.body)}`);
    items.push(...page.body.recordings);
    if (page.body.nextPageToken === null) return items;
    page = await search(sim, token, { pageToken: page.body.nextPageToken });
  }
}

export interface DownloadUrl {
  url: string;
  contentType: string;
  sizeBytes: number;
  channel: string;
}

export function downloadUrl(
  sim: Simulator,
  token: string,
  id: string,
  channel = 'combined',
): Promise<Answer<DownloadUrl>> {
  return apiCall<DownloadUrl>(
    sim,
    token,
    `/api/v2/recording/${encodeURIComponent(id)}/download?channel=${channel}`,
  );
}

/** Polls `check` until it returns a value, or fails after `timeoutMs` (generous: only a hang should hit it). */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

/** Waits until the wall clock is past a presigned URL's `Expires`. */
export async function waitPastExpires(url: string): Promise<void> {
  const expires = Number(new URL(url).searchParams.get('Expires')) * 1000;
  await sleep(Math.max(0, expires - Date.now() + 50));
}
