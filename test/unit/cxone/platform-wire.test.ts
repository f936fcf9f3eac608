import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { basicAuthorization, formBody } from '../../../src/cxone/platform/form-encoding.js';
import { jwtLifetimeSeconds, jwtPayload, tenantIdOf } from '../../../src/cxone/platform/jwt.js';
import { pauseAfterRefusalMs } from '../../../src/cxone/platform/pacing.js';
import {
  completedContactSchema,
  completedContactsResponseSchema,
  playbackResponseSchema,
} from '../../../src/cxone/platform/wire.js';
import { parseWire } from '../../../src/cxone/wire.js';
import { CxrecError } from '../../../src/errors.js';
import { scrubText, scrubValue } from '../../../src/redact.js';

const jwt = (payload: unknown): string =>
  `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;

const current = {
  contactId: 584930211,
  masterContactId: 584930200,
  contactStartDate: '2024-01-15T10:31:07.000Z',
  lastUpdateTime: '2024-01-15T10:40:00.000Z',
  mediaTypeId: 4,
  mediaTypeName: 'Call',
  agentId: 1001,
  firstName: 'Ada',
  lastName: 'Lovelace',
  skillId: 77,
  skillName: 'Billing',
  teamId: 9,
  campaignId: 3,
  fromAddress: '5551230000',
  toAddress: '5559870000',
  isOutbound: true,
  totalDurationSeconds: 312,
  abandoned: false,
  isLogged: true,
  endReason: 'Contact Hung Up',
};

const normalised = {
  ...current,
  contactId: '584930211',
  masterContactId: '584930200',
  agentId: '1001',
  skillId: '77',
  teamId: '9',
  campaignId: '3',
};

function invalid(value: unknown, field: RegExp): void {
  assert.throws(
    () => parseWire(completedContactSchema, value, 'contacts_completed'),
    (err: unknown) => {
      assert.ok(err instanceof CxrecError);
      assert.equal(err.code, 'invalid_response');
      assert.match(err.message, field);
      return true;
    },
  );
}

describe('platform wire normalisation', () => {
  it('keeps a current contact, ids as decimal strings', () => {
    assert.deepEqual(parseWire(completedContactSchema, current, 'c'), normalised);
  });

  it('reads the old spellings and every value as a string', () => {
    const old = {
      contactId: '584930211',
      masterContactId: '584930200',
      contactStart: '2024-01-15T10:31:07Z',
      lastUpdateTime: '2024-01-15T10:40:00Z',
      mediaType: '4',
      mediaTypeName: 'Call',
      agentId: '1001',
      firstName: 'Ada',
      lastName: 'Lovelace',
      skillId: '77',
      skillName: 'Billing',
      teamId: '9',
      campaignId: '3',
      fromAddr: '5551230000',
      toAddr: '5559870000',
      isOutbound: 'True',
      totalDurationSeconds: '312',
      abandoned: 'False',
      isLogged: 'true',
      endReason: 'Contact Hung Up',
      ACWSeconds: '0',
    };
    assert.deepEqual(parseWire(completedContactSchema, old, 'c'), normalised);
  });

  it('treats null and empty optional values as absent, and a zone-less instant as UTC', () => {
    const parsed = parseWire(
      completedContactSchema,
      {
        ...current,
        agentId: null,
        endReason: '',
        fromAddress: null,
        contactStartDate: '2024-01-15T10:31:07',
      },
      'c',
    );
    assert.equal(parsed.agentId, undefined);
    assert.equal(parsed.endReason, undefined);
    assert.equal(parsed.fromAddress, undefined);
    assert.equal(parsed.contactStartDate, '2024-01-15T10:31:07.000Z');
  });

  it('names a needed field missing in both spellings, and a malformed one', () => {
    const { contactStartDate: _drop, ...noStart } = current;
    invalid(noStart, /contactStartDate: missing \(sent as neither contactStartDate nor contactStart\)/);
    const { masterContactId: _m, ...noMaster } = current;
    invalid(noMaster, /masterContactId: missing/);
    const { totalDurationSeconds: _t, ...noDuration } = current;
    invalid(noDuration, /totalDurationSeconds/);
    invalid({ ...current, contactId: '58x' }, /contactId/);
    invalid({ ...current, isLogged: 'maybe' }, /isLogged/);
    invalid({ ...current, contactStartDate: 'yesterday' }, /contactStartDate: expected an ISO-8601/);
  });

  it('reads a page with and without a next link', () => {
    const page = parseWire(
      completedContactsResponseSchema,
      {
        totalRecords: '2',
        lastPollTime: '2024-01-15T12:00:00Z',
        _links: { next: null },
        completedContacts: [current],
      },
      'c',
    );
    assert.equal(page.totalRecords, 2);
    assert.equal(page._links?.next, null);
    assert.equal(page.lastPollTime, '2024-01-15T12:00:00.000Z');
  });

  it('reads a playback answer, dropping what it does not need', () => {
    const parsed = parseWire(
      playbackResponseSchema,
      {
        contactId: 'uuid',
        acdcontactId: '1',
        interactions: [
          { mediaType: 'voice-only', data: { fileToPlayUrl: 'https://m/x', segmentsDataList: [] } },
        ],
      },
      'playback',
    );
    assert.equal(parsed.interactions[0]?.data?.fileToPlayUrl, 'https://m/x');
  });
});

describe('access-key login pieces', () => {
  it('form-encodes + / = in a secret', () => {
    const body = formBody({ grant_type: 'password', username: 'AK1', password: 'a+b/c=d==' });
    assert.equal(body, 'grant_type=password&username=AK1&password=a%2Bb%2Fc%3Dd%3D%3D');
    assert.equal(new URLSearchParams(body).get('password'), 'a+b/c=d==');
  });

  it('sends the application as HTTP Basic', () => {
    assert.equal(basicAuthorization('app', 's+/='), `Basic ${Buffer.from('app:s+/=').toString('base64')}`);
  });

  it('reads tenantId and the lifetime from the JWT payload, unverified', () => {
    const token = jwt({ tenantId: 'tenant-1', iat: 100, exp: 3700 });
    assert.equal(tenantIdOf(token), 'tenant-1');
    assert.equal(jwtPayload(token).iat, 100);
    assert.equal(jwtLifetimeSeconds(token), 3600);
    assert.equal(jwtLifetimeSeconds(jwt({ tenantId: 't' })), undefined);
  });

  it('refuses a token that is no JWT or has no tenant, without quoting it', () => {
    for (const token of ['opaque-token-value', 'a.!!!.c', jwt(['x']), jwt({ icBUId: 1 })]) {
      assert.throws(
        () => tenantIdOf(token),
        (err: unknown) =>
          err instanceof CxrecError && err.code === 'invalid_response' && !err.message.includes(token),
      );
    }
  });

  it('pauses after a 429 by doubling from the base, at least 1 s, at most the cap', () => {
    const policy = { baseMs: 2000, capMs: 60_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 40].map((n) => pauseAfterRefusalMs(n, policy)),
      [2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000],
    );
    assert.equal(pauseAfterRefusalMs(1, { baseMs: 20, capMs: 60_000 }), 1000);
  });

  it('redacts refresh and id tokens, the access key secret and bare JWTs', () => {
    const token = jwt({ tenantId: 't', iat: 1, exp: 2 });
    const scrubbed = scrubValue({
      refresh_token: 'r',
      id_token: 'i',
      accessKeySecret: 'k',
      note: `got ${token}`,
    }) as Record<string, string>;
    assert.equal(scrubbed.refresh_token, '[REDACTED]');
    assert.equal(scrubbed.id_token, '[REDACTED]');
    assert.equal(scrubbed.accessKeySecret, '[REDACTED]');
    assert.ok(!scrubbed.note?.includes(token));
    assert.equal(
      scrubText('grant_type=password&username=AK1&password=a%2Bb&refresh_token=xyz'),
      'grant_type=password&username=AK1&password=[REDACTED]&refresh_token=[REDACTED]',
    );
  });
});
