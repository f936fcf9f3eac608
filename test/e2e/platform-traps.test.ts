/**
 * `cxrec export` against a platform tenant holding one call per trap of
 * cxone-platform-api.md §3–4, each placed by hand: transfer legs (one
 * master, and the third-leg new master), unrecorded and abandoned calls,
 * chat and email contacts, a call still processing, a purged call, calls of
 * two and three voice interactions, media of at most 1024 bytes and of
 * 1025, WAV media, a multipart ETag, and a call indexed late (while the
 * export runs, with an earlier start than others). Every stored byte is
 * checked against the simulator's truth, and each trap by name.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  startPlatformSimulator,
  type CallSpec,
  type PlatformSimulator,
  type TruthMasterContact,
} from '../../src/simulator/platform/index.js';
import { assertPlatformInvariants, ledgerRows, platformEnv, until } from '../helpers/platform-e2e.js';
import { startCli } from '../helpers/run-cli.js';

const timeScale = 600;
const now = Date.now();
/** A call that ended `minutesAgo` ago, `legs` legs of 60 s each. */
const ended = (minutesAgo: number, spec: CallSpec = {}): CallSpec => ({
  startDate: new Date(now - minutesAgo * 60_000 - (spec.legs ?? 1) * 60_000),
  legDurationSeconds: 60,
  ...spec,
});

const traps = {
  plain: ended(25),
  twoLegs: ended(30, { legs: 2 }),
  fourLegs: ended(35, { legs: 4 }),
  fiveLegs: ended(40, { legs: 5 }),
  unrecorded: ended(45, { recorded: false }),
  abandoned: ended(50, { abandoned: true }),
  twoInteractions: ended(55, { interactions: 2 }),
  threeInteractions: ended(60, { interactions: 3, legs: 2 }),
  tiny: ended(65, { sizeBytes: 700 }),
  exactly1024: ended(70, { sizeBytes: 1024 }),
  just1025: ended(75, { sizeBytes: 1025 }),
  wav: ended(80, { contentType: 'audio/wav' }),
  multipartEtag: ended(85, { etag: 'multipart' }),
  purged: ended(90),
  // Ended a second before the start and found by playback 5 s (real) later: the first ask meets 404.
  processing: { startDate: new Date(now - 61_000), legDurationSeconds: 60, processingMs: 5_000 * timeScale },
  chat: ended(95, { mediaTypeId: 3 }),
  email: ended(100, { mediaTypeId: 1 }),
} satisfies Record<string, CallSpec>;
type Trap = keyof typeof traps;

describe('the platform dialect: every trap of the contract, one call each', () => {
  let sim: PlatformSimulator;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const masters = new Map<Trap | 'late', string[]>();

  before(async () => {
    sim = await startPlatformSimulator({
      recordings: 0,
      seed: 31,
      timeScale,
      extraCalls: Object.values(traps),
      rateLimit: { requests: 1200, windowSeconds: 60 },
      playbackLimit: { requests: 600, windowSeconds: 60 },
      media: { minBytes: 4096, maxBytes: 64 * 1024 },
      mix: { before2018Calls: 0 },
      listingInserts: false,
    });
    dir = await mkdtemp(join(tmpdir(), 'cxrec-e2e-platform-traps-'));
    env = platformEnv(sim, dir, { CXREC_SIDECARS: 'true', CXREC_MAX_PROCESSING_MINUTES: '0.5' });
  });

  after(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('stores each retrievable object once, settles the rest, writes nothing for no audio', async () => {
    const truth = await sim.truth();
    const byStart = (spec: CallSpec): TruthMasterContact[] =>
      truth.masterContacts.filter(
        (m) => m.callId === truth.masterContacts.find((x) => x.startDate === iso(spec.startDate))?.callId,
      );
    for (const [name, spec] of Object.entries(traps) as [Trap, CallSpec][]) {
      if (spec.mediaTypeId !== undefined) continue;
      masters.set(
        name,
        byStart(spec).map((m) => m.masterContactId),
      );
    }
    sim.purge(masters.get('purged')![0]!);
    const since = new Date(now - 2 * 3600_000).toISOString();

    const run = startCli(['export', '--since', since], env);
    // Indexed late: a call that started before every other shows up once the export has listed.
    await until(() => sim.stats().calls['completed-contacts'].total >= 1, 30_000, 'the first listing');
    const [late] = sim.addCalls([ended(110)]);
    masters.set('late', late!);
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);

    const storageDir = join(dir, 'store');
    await assertPlatformInvariants(sim, { storageDir, statePath: join(dir, 'state.db'), since });
    const rows = await ledgerRows(join(dir, 'state.db'));
    const after = await sim.truth();
    const master = (id: string): TruthMasterContact =>
      after.masterContacts.find((m) => m.masterContactId === id)!;
    const state = (id: string): string =>
      `${rows.get(id)?.state ?? 'missing'} (${rows.get(id)?.reason ?? ''})`;
    const ids = (trap: Trap | 'late'): string[] => masters.get(trap) ?? [];

    // Transfers: one row per master contact, with every leg; legs 3+ belong to the third leg's master.
    assert.equal(ids('twoLegs').length, 1);
    assert.deepEqual(rows.get(ids('twoLegs')[0]!)?.meta.contactIds?.length, 2);
    for (const trap of ['fourLegs', 'fiveLegs'] as const) {
      const [first, second] = ids(trap);
      assert.ok(first && second && ids(trap).length === 2, `${trap}: two masters`);
      assert.equal(rows.get(first)?.meta.contactIds?.length, 2);
      assert.equal(rows.get(second)?.meta.contactIds?.length, trap === 'fourLegs' ? 2 : 3);
      assert.equal(
        second,
        rows.get(second)?.meta.contactIds?.[0],
        `${trap}: the new master is the third leg`,
      );
      for (const id of [first, second])
        assert.equal(rows.get(id)?.state, 'stored', `${trap} ${id}: ${state(id)}`);
      // No leg other than a master has a row of its own.
      for (const leg of master(second).contactIds.slice(1)) assert.equal(rows.has(leg), false);
    }
    // No recording ever, whatever playback is asked; abandoned calls are not asked at all.
    for (const trap of ['unrecorded', 'abandoned', 'purged'] as const)
      assert.equal(rows.get(ids(trap)[0]!)?.state, 'media_unavailable', `${trap}: ${state(ids(trap)[0]!)}`);
    assert.match(rows.get(ids('abandoned')[0]!)?.reason ?? '', /abandoned/);
    // Non-voice contacts are never listed into the ledger.
    for (const id of after.nonVoiceContactIds) assert.equal(rows.has(id), false, `non-voice contact ${id}`);
    assert.equal(after.nonVoiceContactIds.length, 2);
    // Several interactions: the first at the usual key, the others at -2, -3.
    const keys = (await readdir(join(storageDir, 'recordings'))).sort();
    const three = ids('threeInteractions')[0]!;
    assert.deepEqual(
      keys.filter((k) => k.startsWith(three)),
      [`${three}-2_combined.mp4`, `${three}-3_combined.mp4`, `${three}_combined.mp4`],
    );
    assert.ok(keys.includes(`${ids('twoInteractions')[0]!}-2_combined.mp4`));
    // ≤ 1024 bytes is no audio: settled, and nothing written; 1025 bytes is audio.
    for (const trap of ['tiny', 'exactly1024'] as const) {
      const id = ids(trap)[0]!;
      assert.equal(rows.get(id)?.state, 'media_unavailable', `${trap}: ${state(id)}`);
      assert.equal(keys.filter((k) => k.startsWith(id)).length, 0, `${trap}: nothing written`);
    }
    const just = ids('just1025')[0]!;
    assert.equal((await stat(join(storageDir, 'recordings', `${just}_combined.mp4`))).size, 1025);
    // WAV media keeps its extension; a multipart ETag is no md5 but the bytes still match the truth.
    const wav = master(ids('wav')[0]!).objects[0]!;
    const wavBytes = await readFile(join(storageDir, wav.key));
    assert.equal(createHash('md5').update(wavBytes).digest('hex'), wav.md5);
    assert.match(wav.key, /\.wav$/);
    assert.match(master(ids('multipartEtag')[0]!).objects[0]!.etag, /-\d+"$/);
    // Processing: asked before it was ready, then stored; the late call found by the last listing.
    assert.equal(rows.get(ids('processing')[0]!)?.state, 'stored', state(ids('processing')[0]!));
    assert.equal(rows.get(ids('late')[0]!)?.state, 'stored', state(ids('late')[0]!));
    const stats = sim.stats();
    assert.ok(stats.playback.notFound >= 1, 'the processing call met a 404 first');
    // Every leg of a transferred call in its sidecar.
    const sidecar = JSON.parse(
      await readFile(join(storageDir, 'metadata', `${ids('fiveLegs')[1]!}.json`), 'utf8'),
    ) as { contact?: { contactIds: string[] } };
    assert.deepEqual(sidecar.contact?.contactIds, master(ids('fiveLegs')[1]!).contactIds);
  });

  test('a rerun fetches nothing', async () => {
    sim.resetStats();
    const res = await startCli(['export', '--since', new Date(now - 2 * 3600_000).toISOString()], env).done;
    assert.equal(res.code, 0, res.stderr);
    assert.equal(sim.stats().media.bytesServed, 0);
    assert.equal(sim.stats().calls.playback.total, 0);
  });
});

function iso(d: Date | string | undefined): string {
  return new Date(d ?? 0).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
