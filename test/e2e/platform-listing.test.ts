/**
 * Offset paging over a live index (cxone-platform-api.md §3): 1 050 phone
 * calls in the window, so every listing takes two pages or more (some of
 * them short yet not the last), and each request past the first page
 * indexes one more call that started earlier — every later offset moves
 * by one, so a page boundary repeats a contact and the new one is missed by
 * that listing. The export must end only when a complete listing finds
 * nothing new: every call stored or settled once, none listed twice.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { startPlatformSimulator } from '../../src/simulator/platform/index.js';
import { assertPlatformInvariants, ledgerRows, platformEnv } from '../helpers/platform-e2e.js';
import { startCli } from '../helpers/run-cli.js';

/** 1 050 calls, all but the transferred abandoned (settled at listing, no playback): the run is about listing calls. */
const listingMix = {
  abandoned: 0.97,
  lateIndexed: 0,
  stillProcessing: 0,
  unrecorded: 0,
  purged: 0,
  tinyMedia: 0,
  twoInteractions: 0,
  transferred: 0.03,
  nonVoice: 0.05,
  before2018Calls: 0,
};

/** A tenant of `listingMix` with no index moves of its own: only what a test adds changes the window. */
function startListingSimulator(seed: number): ReturnType<typeof startPlatformSimulator> {
  return startPlatformSimulator({
    recordings: 1050,
    seed,
    timeScale: 600,
    mix: listingMix,
    listingInserts: false,
    shortPages: 0,
    rateLimit: { requests: 1200, windowSeconds: 60 },
    playbackLimit: { requests: 600, windowSeconds: 60 },
    media: { minBytes: 2048, maxBytes: 8 * 1024 },
  });
}

test('a window that did not change: one listing, then one count call instead of listing every page again', async () => {
  const sim = await startListingSimulator(59);
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-platform-count-'));
  try {
    const truth = await sim.truth();
    const res = await startCli(
      ['export', '--since', truth.createdFrom, '--until', truth.createdTo],
      platformEnv(sim, dir),
    ).done;
    assert.equal(res.code, 0, res.stderr);
    const where = { storageDir: join(dir, 'store'), statePath: join(dir, 'state.db') };
    await assertPlatformInvariants(sim, { ...where, since: truth.createdFrom, until: truth.createdTo });
    const legs = truth.masterContacts
      .filter((m) => m.startDate >= truth.createdFrom && m.startDate < truth.createdTo)
      .reduce((n, m) => n + m.contactIds.length, 0);
    assert.ok(legs > 1000, `legs: ${legs}`);
    // The pages of one listing, plus the call that counts the window at the end.
    assert.equal(sim.stats().calls['completed-contacts'].total, Math.ceil(legs / 1000) + 1);
  } finally {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a call indexed after the listing: the count differs, so the window is listed again and the call stored', async () => {
  const sim = await startListingSimulator(61);
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-platform-recount-'));
  try {
    const truth = await sim.truth();
    const cli = startCli(
      ['export', '--since', truth.createdFrom, '--until', truth.createdTo],
      platformEnv(sim, dir),
    );
    // Once the first listing has read both pages, a call inside the window is indexed.
    while (sim.stats().calls['completed-contacts'].total < 2) await sleep(10);
    const [added] = sim.addCalls([
      { startDate: new Date(Date.parse(truth.createdTo) - 3_600_000), legs: 1, processingMs: 0 },
    ]);
    const res = await cli.done;
    assert.equal(res.code, 0, res.stderr);
    const master = added?.[0];
    assert.ok(master !== undefined);
    const statePath = join(dir, 'state.db');
    assert.equal((await ledgerRows(statePath)).get(master)?.state, 'stored', 'the call indexed late');
    await assertPlatformInvariants(sim, {
      storageDir: join(dir, 'store'),
      statePath,
      since: truth.createdFrom,
      until: truth.createdTo,
    });
    // Listing, count (one more than listed), listing again, count (matches): at least 2 + 1 + 2 + 1 calls.
    assert.ok(
      sim.stats().calls['completed-contacts'].total >= 6,
      JSON.stringify(sim.stats().calls['completed-contacts']),
    );
  } finally {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('late indexing while paging: the export lists until nothing new, every call once', async () => {
  const timeScale = 600;
  const sim = await startPlatformSimulator({
    recordings: 1050,
    seed: 53,
    timeScale,
    // Most calls are abandoned (settled at listing, no playback) so the run is about paging, not transfers.
    mix: {
      abandoned: 0.92,
      lateIndexed: 0.005,
      stillProcessing: 0,
      unrecorded: 0,
      purged: 0,
      tinyMedia: 0,
      twoInteractions: 0.005,
      transferred: 0.03,
      nonVoice: 0.05,
      before2018Calls: 0,
    },
    // Late-indexed calls never show up by themselves during the test: only the listing inserts index them.
    lifecycle: { lateIndexMs: [3_600_000 * timeScale, 7_200_000 * timeScale] },
    listingInserts: { probability: 1, max: 20 },
    shortPages: 0.5,
    rateLimit: { requests: 1200, windowSeconds: 60 },
    playbackLimit: { requests: 600, windowSeconds: 60 },
    media: { minBytes: 2048, maxBytes: 8 * 1024 },
  });
  const dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-platform-listing-'));
  try {
    const truth = await sim.truth();
    const late = truth.masterContacts.filter((m) => m.traits.includes('late-indexed'));
    assert.ok(late.length >= 5 && late.every((m) => Date.parse(m.firstIndexedAt) > Date.now() + 3_000_000));
    const env = platformEnv(sim, dir);
    const res = await startCli(['export', '--since', truth.createdFrom, '--until', truth.createdTo], env)
      .done;
    assert.equal(res.code, 0, res.stderr);
    const where = {
      storageDir: join(dir, 'store'),
      statePath: join(dir, 'state.db'),
      since: truth.createdFrom,
      until: truth.createdTo,
    };
    await assertPlatformInvariants(sim, where);
    const stats = sim.stats();
    // Every late call was indexed by a listing request past the first page, and each was then found.
    assert.equal(stats.listingInserts, late.length, `inserted ${stats.listingInserts} of ${late.length}`);
    const rows = await ledgerRows(where.statePath);
    for (const m of late) assert.equal(rows.get(m.masterContactId)?.state, 'stored', m.masterContactId);
    // More than one listing was needed, and far fewer than one call per contact.
    const listings = stats.calls['completed-contacts'].total;
    assert.ok(listings >= 2 * (late.length + 1) && listings < 60, `listing calls: ${listings}`);
    // One playback call per recording, abandoned calls never asked.
    const objects = (await sim.truth()).masterContacts.filter((m) => m.expected === 'stored').length;
    assert.ok(stats.playback.distinctIdsAsked <= objects + 1, `asked ${stats.playback.distinctIdsAsked}`);
  } finally {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
