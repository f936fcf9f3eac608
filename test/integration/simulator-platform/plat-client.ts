/** Plain HTTP helpers for the platform simulator's own tests: undici fetch, every status and header visible. */
import { fetch } from 'undici';

import type { AccessKeySpec, PlatformSimulator } from '../../../src/simulator/platform/index.js';

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

async function reply<T>(res: Awaited<ReturnType<typeof fetch>>): Promise<Reply<T>> {
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers as unknown as Headers, text, body: body as T };
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  id_token: string;
  expires_in: number;
  token_type: string;
  error?: string;
  error_description?: string;
  errorDescription?: string;
}

/** POSTs `form` (already encoded) to the token endpoint. */
export async function tokenRequest(
  sim: PlatformSimulator,
  form: string,
  headers: Record<string, string> = {},
): Promise<Reply<Tokens>> {
  const res = await fetch(`${sim.urls.issuer}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: form,
  });
  return reply<Tokens>(res);
}

export async function login(sim: PlatformSimulator, key: AccessKeySpec = sim.accessKey()): Promise<Tokens> {
  const app = sim.applications[0];
  if (!app) throw new Error('no application');
  const answer = await tokenRequest(
    sim,
    new URLSearchParams({ grant_type: 'password', username: key.id, password: key.secret }).toString(),
    { authorization: basic(app.id, app.secret) },
  );
  if (answer.status !== 200) throw new Error(`login answered ${answer.status} ${answer.text}`);
  return answer.body;
}

export function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

export async function get<T = Record<string, unknown>>(
  url: string,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  return reply<T>(await fetch(url, { headers }));
}

export interface Listing {
  totalRecords: number;
  businessUnitId: number;
  lastPollTime: string;
  _links: { self: string; next: string | null; previous: string | null };
  completedContacts: Record<string, unknown>[];
}

export function completedUrl(
  sim: PlatformSimulator,
  params: Record<string, string>,
  version = 'v30.0',
): string {
  return `${sim.urls.api}/inContactAPI/services/${version}/contacts/completed?${new URLSearchParams(params).toString()}`;
}

export function listing(
  sim: PlatformSimulator,
  token: string,
  params: Record<string, string>,
  version = 'v30.0',
) {
  return get<Listing>(completedUrl(sim, params, version), {
    authorization: `Bearer ${token}`,
    accept: 'application/json',
  });
}

/** Every page, following `_links.next`. */
export async function listAll(sim: PlatformSimulator, token: string, params: Record<string, string>) {
  const items: Record<string, unknown>[] = [];
  const pages: Reply<Listing>[] = [];
  let page = await listing(sim, token, params);
  for (;;) {
    if (page.status === 204) return { items, pages };
    if (page.status !== 200) throw new Error(`listing answered ${page.status}`);
    pages.push(page);
    items.push(...page.body.completedContacts);
    if (page.body._links.next === null) return { items, pages };
    page = await get<Listing>(page.body._links.next, {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
    });
  }
}

export interface Playback {
  contactId: string;
  acdcontactId: string;
  interactions: {
    mediaType: string;
    channelType: string;
    startTime: string;
    data: { fileToPlayUrl: string };
  }[];
  message?: string;
  internalCode?: string;
  route?: string;
}

export function playback(sim: PlatformSimulator, token: string, id: string) {
  return get<Playback>(
    `${sim.urls.api}/media-playback/v1/contacts?acd-call-id=${id}&media-type=voice-only&exclude-waveforms=true&exclude-qm-categories=true`,
    { authorization: `Bearer ${token}` },
  );
}

export async function download(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}
