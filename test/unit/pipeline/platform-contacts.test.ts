import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  afterNotFound,
  groupByMaster,
  interactionIndex,
  interactionRowIds,
  masterJob,
  type ListedContact,
} from '../../../src/pipeline/platform-contacts.js';

const policy = { retentionDays: 90, pollSeconds: 30, maxProcessingMinutes: 240 };
const T = Date.parse('2026-11-30T12:00:00Z');

function leg(contactId: string, masterContactId: string, start: string, extra: Partial<ListedContact> = {}) {
  return { contactId, masterContactId, contactStartDate: start, totalDurationSeconds: 60, ...extra };
}

describe('groupByMaster', () => {
  test('one master per call, legs in start order, each leg once, end = the latest leg end', () => {
    const masters = groupByMaster([
      leg('102', '101', '2026-11-30T10:01:00.500Z', { totalDurationSeconds: 300 }),
      leg('101', '101', '2026-11-30T10:00:00Z', { agentId: '7', firstName: 'Ada', lastName: 'L' }),
      leg('201', '201', '2026-11-30T10:05:00Z'),
      leg('101', '101', '2026-11-30T10:00:00Z'), // the same leg on a shifted page
    ]);
    assert.equal(masters.length, 2);
    const call = masters[0]!;
    assert.deepEqual(
      call.legs.map((l) => l.contactId),
      ['101', '102'],
    );
    assert.equal(call.startMs, Date.parse('2026-11-30T10:00:00Z'));
    assert.equal(call.endMs, Date.parse('2026-11-30T10:06:00.500Z'));
  });
});

describe('masterJob', () => {
  test('a fresh call is pending from its end plus the allowance, keyed by master, with every leg kept', () => {
    const [m] = groupByMaster([
      leg('101', '101', '2026-11-30T11:58:00.250Z', {
        isOutbound: false,
        agentId: '7',
        firstName: 'Ada',
        lastName: 'Lovelace',
        skillId: '88',
        skillName: 'Support',
        fromAddress: '+15550100',
        toAddress: '+15550199',
      }),
      leg('102', '101', '2026-11-30T11:59:00Z'),
    ]);
    const job = masterJob(policy, m!, T);
    assert.equal(job.recordingId, '101');
    assert.equal(job.channel, 'combined');
    assert.equal(job.state, 'pending');
    assert.equal(job.nextRunAt, Date.parse('2026-11-30T12:00:00Z') + 30_000);
    assert.deepEqual(job.meta, {
      recordingId: '101',
      contactId: '101',
      status: 'Completed',
      createdDate: '2026-11-30T11:58:00Z',
      durationSeconds: 119.75,
      contactIds: ['101', '102'],
      direction: 'Inbound',
      agentId: '7',
      agentName: 'Ada Lovelace',
      skillId: '88',
      skillName: 'Support',
      fromAddress: '+15550100',
      toAddress: '+15550199',
    });
  });

  test('a call long over is asked for at once', () => {
    const [m] = groupByMaster([leg('1', '1', '2026-11-30T08:00:00Z')]);
    assert.equal(masterJob(policy, m!, T).nextRunAt, T);
  });

  test('an abandoned call settles with no playback call; one recorded leg is enough to ask', () => {
    const [m] = groupByMaster([leg('1', '1', '2026-11-30T08:00:00Z', { abandoned: true })]);
    const job = masterJob(policy, m!, T);
    assert.equal(job.state, 'media_unavailable');
    assert.match(job.reason ?? '', /abandoned/);
    const [m2] = groupByMaster([
      leg('1', '1', '2026-11-30T08:00:00Z', { abandoned: true }),
      leg('2', '1', '2026-11-30T08:01:00Z', { abandoned: false }),
    ]);
    assert.equal(masterJob(policy, m2!, T).state, 'pending');
  });

  test('older than 70 % of the retention is left out', () => {
    const [m] = groupByMaster([leg('1', '1', new Date(T - 64 * 86_400_000).toISOString())]);
    assert.equal(masterJob(policy, m!, T).state, 'out_of_retention');
    const [young] = groupByMaster([leg('1', '1', new Date(T - 62 * 86_400_000).toISOString())]);
    assert.equal(masterJob(policy, young!, T).state, 'pending');
  });
});

describe('afterNotFound', () => {
  const meta = { createdDate: '2026-11-30T11:00:00Z', durationSeconds: 600 };
  const end = Date.parse('2026-11-30T11:10:00Z');

  test('asks again after about as long as the call has been over, at least the poll interval', () => {
    assert.deepEqual(afterNotFound(policy, meta, end + 10_000), { kind: 'ask_again', at: end + 40_000 });
    assert.deepEqual(afterNotFound(policy, meta, end + 600_000), { kind: 'ask_again', at: end + 1_200_000 });
  });

  test('the last ask falls on the processing deadline, and a 404 then settles: no recording', () => {
    const deadline = end + 240 * 60_000;
    assert.deepEqual(afterNotFound(policy, meta, deadline - 60_000), { kind: 'ask_again', at: deadline });
    const v = afterNotFound(policy, meta, deadline);
    assert.ok(v.kind === 'settle');
    assert.equal(v.state, 'media_unavailable');
    assert.match(v.reason, /no recording/);
  });

  test('an unrecorded call costs about ten asks with the default settings', () => {
    let now = end + policy.pollSeconds * 1000;
    let asks = 1;
    for (;;) {
      const v = afterNotFound(policy, meta, now);
      if (v.kind === 'settle') break;
      now = v.at;
      asks++;
    }
    assert.ok(asks >= 8 && asks <= 11, `asks: ${asks}`);
  });

  test('past the retention: purged', () => {
    const old = { createdDate: '2026-08-01T00:00:00Z', durationSeconds: 60 };
    const v = afterNotFound(policy, old, T);
    assert.equal(v.kind === 'settle' && v.state, 'purged');
  });
});

describe('interactions', () => {
  test('the first under the master, the others at -2, -3', () => {
    assert.deepEqual(interactionRowIds('555', 3), ['555', '555-2', '555-3']);
    assert.equal(interactionIndex('555', '555'), 0);
    assert.equal(interactionIndex('555-2', '555'), 1);
    assert.equal(interactionIndex('555-3', '555'), 2);
    assert.equal(interactionIndex('555-x', '555'), 0);
  });
});
