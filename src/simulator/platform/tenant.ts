/**
 * The platform tenant's contacts: phone calls of one or more legs grouped
 * into master contacts (each with its recording, or none), non-voice
 * contacts, and the timelines that make the contract's traps happen —
 * indexing minutes after a leg ends, processing after a call ends,
 * retention purges, the pre-2018 gap. Every state is a function of the
 * wall clock over fixed instants, so nothing ticks in the background.
 */
import { createMediaObject, objectHashes, etagFor, type MediaObject } from '../media.js';
import { SeededRandom } from '../seeded-random.js';
import { assignTraits } from '../trait-plan.js';
import { nonVoiceMediaTypes, type CallSpec, type PlatformContentType } from './options.js';
import type { PlatformResolvedOptions } from './resolved-options.js';
import { iso, specDateMs, wholeSecond } from '../wire-time.js';

export type PlatformTrait =
  | 'still-processing'
  | 'late-indexed'
  | 'abandoned'
  | 'unrecorded'
  | 'purged'
  | 'two-interactions'
  | 'tiny-media'
  | 'transferred'
  | 'second-master'
  | 'before-2018';

export type PlatformOrigin = 'generated' | 'extra' | 'added';

export interface Leg {
  readonly contactId: string;
  readonly masterContactId: string;
  readonly startMs: number;
  readonly durationSeconds: number;
  readonly mediaTypeId: number;
  readonly agentId: number;
  readonly firstName: string;
  readonly lastName: string;
  readonly skillId: number;
  readonly skillName: string;
  readonly teamId: number;
  readonly campaignId: number;
  readonly fromAddress: string;
  readonly toAddress: string;
  readonly isOutbound: boolean;
  readonly abandoned: boolean;
  readonly endReason: string;
  /** Listings show the leg from this wall-clock ms on; it is also its `lastUpdateTime`. */
  indexedAtMs: number;
}

export interface Interaction {
  readonly startMs: number;
  readonly endMs: number;
  readonly obj: MediaObject<PlatformContentType>;
}

export interface MasterContact {
  readonly masterContactId: string;
  /** The first leg's contactId of the call this master belongs to. */
  readonly callId: string;
  readonly legs: readonly Leg[];
  readonly mediaTypeId: number;
  /** Latest `contactStartDate + totalDurationSeconds` of its legs. */
  readonly endMs: number;
  /** Voice interactions ordered by start; empty for unrecorded, abandoned and non-voice contacts. */
  readonly interactions: readonly Interaction[];
  /** Playback finds the media from this wall-clock ms on. */
  readonly readyAtMs: number;
  /** Media gone from this wall-clock ms on (retention, or the purge hook). */
  purgedAtMs: number;
  /** The recording system's UUID, playback's `contactId`. */
  readonly recordingUuid: string;
  readonly origin: PlatformOrigin;
  readonly traits: readonly PlatformTrait[];
}

/** What an exporter should end with for one object or master contact. */
export type PlatformExpected = 'stored' | 'media_unavailable' | 'purged';

export interface TruthObject {
  /** `''` for the first interaction, `-2`, `-3`, … for the others. */
  keySuffix: string;
  /** `recordings/{masterContactId}{suffix}_combined.{ext}` without any prefix. */
  key: string;
  sizeBytes: number;
  md5: string;
  sha256: string;
  etag: string;
  contentType: PlatformContentType;
  expected: 'stored' | 'media_unavailable';
}

export interface TruthMasterContact {
  masterContactId: string;
  callId: string;
  contactIds: string[];
  startDate: string;
  endDate: string;
  /** When playback first finds the media (absent when it never will). */
  readyAt: string | null;
  /** The earliest instant a listing shows one of its legs. */
  firstIndexedAt: string;
  purgedAt: string | null;
  origin: PlatformOrigin;
  traits: PlatformTrait[];
  expected: PlatformExpected;
  objects: TruthObject[];
}

export interface PlatformTruth {
  generatedAt: string;
  seed: number;
  tenantId: string;
  createdFrom: string;
  createdTo: string;
  retentionDays: number;
  /** Every phone master contact, by start: what `mediaTypeId=4` listings lead to. */
  masterContacts: TruthMasterContact[];
  /** Contacts of other media (chat, email, …): listed without `mediaTypeId`, never any audio. */
  nonVoiceContactIds: string[];
}

/** Playback answers 404 for calls recorded before this instant (contract §4). */
export const playbackEpochMs = Date.UTC(2018, 11, 13);

const firstNames = ['Ana', 'Ben', 'Chloé', 'Dev', 'Eun-ji', 'Femi', 'Grace', 'Hugo', 'Ines', 'Jonas'];
const lastNames = ['Okafor', 'Schmidt', 'Tanaka', 'García', 'Murphy', 'Nowak', 'Rossi', 'Dubois'];
const skills: readonly [number, string][] = [
  [4100211, 'Billing'],
  [4100212, 'Support'],
  [4100213, 'Sales'],
  [4100214, 'Retention'],
];
const unrecordedSkill: [number, string] = [4100299, 'IVR Unrecorded'];

/** A call before ids are given: everything but the ACD ids. */
interface CallDraft {
  spec: CallSpec;
  startMs: number;
  legDurations: number[];
  traits: PlatformTrait[];
  origin: PlatformOrigin;
  t0: number;
}

export class PlatformTenant {
  private readonly random: SeededRandom;
  private readonly insertRandom: SeededRandom;
  readonly tenantId: string;
  readonly businessUnitId: number;
  /** Every leg, ascending by (start, contactId): the order of `contactStartDate asc`. */
  private readonly legs: Leg[] = [];
  private readonly masters = new Map<string, MasterContact>();
  private readonly legById = new Map<string, Leg>();
  private readonly objectByKey = new Map<string, { master: MasterContact; interaction: Interaction }>();
  private nextContactId: number;
  insertedWhileListing = 0;

  constructor(private readonly options: PlatformResolvedOptions) {
    this.random = new SeededRandom(options.seed, 21);
    this.insertRandom = new SeededRandom(options.seed, 23);
    this.tenantId = this.random.uuid();
    this.businessUnitId = this.random.int(4_500_000, 4_700_000);
    // 15-digit ids: past 2^31 and past what a 32-bit or float-sloppy client keeps exactly.
    this.nextContactId = this.random.int(400_000_000_000_000, 500_000_000_000_000);
    const drafts = this.generate();
    for (const spec of options.extraCalls) drafts.push(this.draft(spec, options.startMs, 'extra', []));
    this.commit(drafts);
  }

  leg(contactId: string): Leg | undefined {
    return this.legById.get(contactId);
  }

  master(masterContactId: string): MasterContact | undefined {
    return this.masters.get(masterContactId);
  }

  mediaObject(key: string): { master: MasterContact; interaction: Interaction } | undefined {
    return this.objectByKey.get(key);
  }

  masterContactIds(): string[] {
    return [...this.masters.values()].filter((m) => m.mediaTypeId === 4).map((m) => m.masterContactId);
  }

  isPurged(master: MasterContact, nowMs: number): boolean {
    return nowMs >= master.purgedAtMs;
  }

  /** What playback finds for a master contact now: its interactions, or nothing (404). */
  playable(master: MasterContact, nowMs: number): readonly Interaction[] | undefined {
    if (master.interactions.length === 0) return undefined;
    if (master.endMs < playbackEpochMs) return undefined;
    if (nowMs < master.readyAtMs || this.isPurged(master, nowMs)) return undefined;
    return master.interactions;
  }

  /** Legs a listing shows now, in index order. */
  indexedLegs(nowMs: number): Leg[] {
    return this.legs.filter((l) => l.indexedAtMs <= nowMs);
  }

  /**
   * Late indexing met while paging: maybe index now one leg that is still
   * waiting and starts in `[fromMs, toMs)`, so every later offset shifts.
   */
  maybeIndexWhileListing(fromMs: number, toMs: number, nowMs: number): string | undefined {
    const plan = this.options.listingInserts;
    if (!plan || this.insertedWhileListing >= plan.max || !this.insertRandom.chance(plan.probability))
      return undefined;
    const waiting = this.legs.filter((l) => l.indexedAtMs > nowMs && l.startMs >= fromMs && l.startMs < toMs);
    if (waiting.length === 0) return undefined;
    const leg = this.insertRandom.pick(waiting);
    leg.indexedAtMs = nowMs;
    this.insertedWhileListing++;
    return leg.contactId;
  }

  /** Purges a master contact's media from now on (test hook). */
  purge(masterContactId: string, nowMs: number): void {
    const master = this.masters.get(masterContactId);
    if (!master) throw new RangeError(`no master contact ${masterContactId}`);
    master.purgedAtMs = Math.min(master.purgedAtMs, nowMs);
  }

  /** Adds calls now; returns the master contact ids of each call, in order. */
  addCalls(specs: readonly CallSpec[], nowMs: number): string[][] {
    const drafts = specs.map((spec) => this.draft(spec, nowMs, 'added', []));
    return this.commit(drafts);
  }

  async truth(nowMs: number): Promise<PlatformTruth> {
    const masterContacts: TruthMasterContact[] = [];
    const nonVoiceContactIds: string[] = [];
    const ordered = [...this.masters.values()].sort(
      (a, b) =>
        (a.legs[0]?.startMs ?? 0) - (b.legs[0]?.startMs ?? 0) ||
        a.masterContactId.localeCompare(b.masterContactId),
    );
    for (const m of ordered) {
      if (m.mediaTypeId !== 4) nonVoiceContactIds.push(m.masterContactId);
      else masterContacts.push(await this.truthOf(m, nowMs));
    }
    return {
      generatedAt: new Date(nowMs).toISOString(),
      seed: this.options.seed,
      tenantId: this.tenantId,
      createdFrom: iso(this.options.createdFromMs),
      createdTo: iso(this.options.createdToMs),
      retentionDays: this.options.retentionDays,
      masterContacts,
      nonVoiceContactIds,
    };
  }

  private async truthOf(m: MasterContact, nowMs: number): Promise<TruthMasterContact> {
    const startMs = m.legs[0]?.startMs ?? 0;
    const obtainable = m.interactions.length > 0 && m.endMs >= playbackEpochMs && m.purgedAtMs > nowMs;
    const objects: TruthObject[] = [];
    for (const [i, it] of m.interactions.entries()) {
      const suffix = i === 0 ? '' : `-${i + 1}`;
      const hashes = await objectHashes(it.obj);
      objects.push({
        keySuffix: suffix,
        key: `recordings/${m.masterContactId}${suffix}_combined.${it.obj.contentType === 'audio/mp4' ? 'mp4' : 'wav'}`,
        sizeBytes: it.obj.sizeBytes,
        md5: hashes.md5,
        sha256: hashes.sha256,
        etag: (await etagFor(it.obj, it.obj.etagKind)) ?? '',
        contentType: it.obj.contentType,
        expected: it.obj.sizeBytes <= 1024 ? 'media_unavailable' : 'stored',
      });
    }
    let expected: PlatformExpected;
    if (obtainable) expected = objects.some((o) => o.expected === 'stored') ? 'stored' : 'media_unavailable';
    else
      expected = startMs < nowMs - this.options.retentionDays * 86_400_000 ? 'purged' : 'media_unavailable';
    return {
      masterContactId: m.masterContactId,
      callId: m.callId,
      contactIds: m.legs.map((l) => l.contactId),
      startDate: iso(startMs),
      endDate: iso(m.endMs),
      readyAt: m.interactions.length > 0 && m.endMs >= playbackEpochMs ? iso(m.readyAtMs) : null,
      firstIndexedAt: iso(Math.min(...m.legs.map((l) => l.indexedAtMs))),
      purgedAt: Number.isFinite(m.purgedAtMs) ? iso(m.purgedAtMs) : null,
      origin: m.origin,
      traits: [...m.traits],
      expected,
      objects: obtainable ? objects : objects.map((o) => ({ ...o, expected: 'media_unavailable' as const })),
    };
  }

  private generate(): CallDraft[] {
    const { recordings: n, mix, startMs: t0 } = this.options;
    const r = this.random;
    const traitOf = assignTraits<PlatformTrait>(
      n,
      [
        ['still-processing', mix.stillProcessing],
        ['late-indexed', mix.lateIndexed],
        ['abandoned', mix.abandoned],
        ['unrecorded', mix.unrecorded],
        ['purged', mix.purged],
        ['two-interactions', mix.twoInteractions],
        ['tiny-media', mix.tinyMedia],
        ['transferred', mix.transferred],
      ],
      r,
    );
    const drafts: CallDraft[] = [];
    for (let i = 0; i < n; i++) {
      const trait = traitOf.get(i);
      const spec: CallSpec = {};
      switch (trait) {
        case 'abandoned':
          spec.abandoned = true;
          break;
        case 'unrecorded':
          spec.recorded = false;
          break;
        case 'purged': {
          const retentionMs = this.options.retentionDays * 86_400_000;
          spec.startDate = new Date(r.int(t0 - retentionMs - 60 * 86_400_000, t0 - retentionMs - 86_400_000));
          break;
        }
        case 'two-interactions':
          spec.interactions = 2;
          break;
        case 'tiny-media':
          spec.sizeBytes = r.int(64, 1024);
          break;
        case 'transferred':
          spec.legs = r.int(2, Math.max(2, this.options.maxLegs));
          break;
        case 'still-processing':
        case 'late-indexed':
        case undefined:
          break;
      }
      drafts.push(this.draft(spec, t0, 'generated', trait ? [trait] : []));
    }
    for (let k = Math.round(n * mix.nonVoice); k > 0; k--) {
      const ids = Object.keys(nonVoiceMediaTypes).map(Number);
      drafts.push(this.draft({ mediaTypeId: r.pick(ids) }, t0, 'generated', []));
    }
    for (let k = 0; k < mix.before2018Calls; k++) {
      const startDate = new Date(r.int(Date.UTC(2017, 0, 1), playbackEpochMs - 86_400_000));
      drafts.push(this.draft({ startDate }, t0, 'generated', ['before-2018']));
    }
    return drafts;
  }

  /** Dates and durations of a call, drawn where the spec leaves them out. */
  private draft(spec: CallSpec, t0: number, origin: PlatformOrigin, traits: PlatformTrait[]): CallDraft {
    const r = this.random;
    const { createdFromMs, createdToMs, startMs: simStart } = this.options;
    const voice = (spec.mediaTypeId ?? 4) === 4;
    const legCount = !voice || spec.abandoned ? 1 : (spec.legs ?? 1);
    if (!(Number.isInteger(legCount) && legCount >= 1)) throw new RangeError('legs must be an integer ≥ 1');
    const legDurations = Array.from({ length: legCount }, () =>
      spec.abandoned ? r.int(3, 60) : (spec.legDurationSeconds ?? r.int(20, 900)),
    );
    const totalMs = legDurations.reduce((a, b) => a + b, 0) * 1000;
    let startMs: number;
    if (spec.startDate !== undefined) startMs = specDateMs(spec.startDate);
    else if (origin !== 'generated') startMs = t0 - totalMs - 600_000;
    else if (traits.includes('still-processing')) startMs = simStart - totalMs - r.int(1_000, 300_000);
    else {
      startMs = r.int(createdFromMs, createdToMs - 1);
      // A generated call has ended by the start: listings hold completed contacts only.
      const latestStart = Math.min(createdToMs, simStart) - totalMs - 1_000;
      if (startMs > latestStart) startMs = Math.max(createdFromMs, latestStart - r.int(0, 600_000));
    }
    if (spec.abandoned && !traits.includes('abandoned')) traits.push('abandoned');
    if (spec.recorded === false && !traits.includes('unrecorded')) traits.push('unrecorded');
    if (legCount > 1 && !traits.includes('transferred')) traits.push('transferred');
    if ((spec.interactions ?? 1) > 1 && !traits.includes('two-interactions')) traits.push('two-interactions');
    if (spec.sizeBytes !== undefined && spec.sizeBytes <= 1024 && !traits.includes('tiny-media'))
      traits.push('tiny-media');
    if (spec.purged === true && !traits.includes('purged')) traits.push('purged');
    if (startMs < playbackEpochMs && voice && !traits.includes('before-2018')) traits.push('before-2018');
    return { spec, startMs: wholeSecond(startMs), legDurations, traits, origin, t0 };
  }

  /** Gives ACD ids in start order and builds legs, master contacts and media. */
  private commit(drafts: CallDraft[]): string[][] {
    const byStart = drafts.map((d, i) => ({ d, i })).sort((a, b) => a.d.startMs - b.d.startMs || a.i - b.i);
    const out: string[][] = Array.from({ length: drafts.length }, () => []);
    for (const { d, i } of byStart) out[i] = this.build(d);
    return out;
  }

  private build(d: CallDraft): string[] {
    const r = this.random;
    const { spec, traits, origin, t0 } = d;
    const { timeScale, lateIndexRealMs, processingRealMs, retentionDays, mix } = this.options;
    const mediaTypeId = spec.mediaTypeId ?? 4;
    const voice = mediaTypeId === 4;
    const recorded = voice && spec.recorded !== false && !spec.abandoned;
    const [skillId, skillName] = voice && spec.recorded === false ? unrecordedSkill : r.pick(skills);
    const isOutbound = r.chance(0.4);
    const customer = `+1${r.int(200, 989)}${String(r.int(0, 9_999_999)).padStart(7, '0')}`;
    const dnis = `+1800${String(r.int(0, 9_999_999)).padStart(7, '0')}`;
    const lateIndexAt = traits.includes('late-indexed')
      ? t0 + r.int(Math.round(lateIndexRealMs[0]), Math.round(lateIndexRealMs[1]))
      : spec.lateIndexMs !== undefined && spec.lateIndexMs > 0
        ? t0 + spec.lateIndexMs / timeScale
        : -Infinity;

    const legs: Leg[] = [];
    let legStart = d.startMs;
    for (const [k, seconds] of d.legDurations.entries()) {
      this.nextContactId += r.int(1, 40);
      const contactId = String(this.nextContactId);
      const masterContactId = k < 2 ? (legs[0]?.contactId ?? contactId) : (legs[2]?.contactId ?? contactId);
      const legEnd = legStart + seconds * 1000;
      // Indexed minutes after the leg ends (scaled), or later still for the late-indexed trap.
      const indexDelay =
        origin === 'generated' && !traits.includes('still-processing')
          ? r.int(5_000, 120_000) / timeScale
          : 0;
      const firstName = spec.abandoned ? '' : r.pick(firstNames);
      legs.push({
        contactId,
        masterContactId,
        startMs: legStart,
        durationSeconds: seconds,
        mediaTypeId,
        agentId: spec.abandoned ? 0 : r.int(1_000_000, 9_999_999),
        firstName,
        lastName: spec.abandoned ? '' : r.pick(lastNames),
        skillId,
        skillName,
        teamId: r.int(100_000, 999_999),
        campaignId: r.int(10_000, 99_999),
        fromAddress: isOutbound ? dnis : customer,
        toAddress: isOutbound ? customer : dnis,
        isOutbound,
        abandoned: spec.abandoned === true,
        endReason: spec.abandoned
          ? 'Contact Hung Up'
          : k < d.legDurations.length - 1
            ? 'Transferred'
            : 'Contact Hang Up',
        indexedAtMs: Math.max(legEnd + indexDelay, lateIndexAt),
      });
      legStart = legEnd;
    }
    const groups = new Map<string, Leg[]>();
    for (const leg of legs)
      groups.set(leg.masterContactId, [...(groups.get(leg.masterContactId) ?? []), leg]);
    const ids: string[] = [];
    for (const [masterContactId, groupLegs] of groups) {
      const first = groupLegs[0];
      if (!first) continue;
      const endMs = Math.max(...groupLegs.map((l) => l.startMs + l.durationSeconds * 1000));
      const processing =
        spec.processingMs !== undefined
          ? spec.processingMs / timeScale
          : r.int(Math.round(processingRealMs[0]), Math.round(processingRealMs[1]));
      const readyAtMs =
        traits.includes('still-processing') || (spec.processingMs !== undefined && origin !== 'generated')
          ? Math.max(endMs, t0) + processing
          : endMs + processing;
      const interactionCount = recorded ? Math.max(1, spec.interactions ?? 1) : 0;
      const contentType: PlatformContentType =
        spec.contentType ?? (r.chance(mix.wavMedia) ? 'audio/wav' : 'audio/mp4');
      const interactions: Interaction[] = [];
      const span = Math.max(1, endMs - first.startMs);
      for (let k = 0; k < interactionCount; k++) {
        const ext = contentType === 'audio/mp4' ? 'mp4' : 'wav';
        const key = `${this.tenantId}/${masterContactId}/${k + 1}.${ext}`;
        const sizeBytes = spec.sizeBytes ?? r.int(this.options.minBytes, this.options.maxBytes);
        const etagKind = spec.etag ?? (r.chance(mix.multipartEtag) ? 'multipart' : 'md5');
        const obj = createMediaObject<PlatformContentType>(
          {
            key,
            recordingId: masterContactId,
            channel: 'combined',
            sizeBytes,
            contentType,
            etagKind,
            headerOnly: false,
          },
          this.options.seed,
        );
        interactions.push({
          startMs: first.startMs + Math.floor((span * k) / interactionCount),
          endMs: first.startMs + Math.floor((span * (k + 1)) / interactionCount),
          obj,
        });
      }
      const masterTraits = [...traits];
      if (masterContactId !== legs[0]?.contactId) masterTraits.push('second-master');
      const purgedAtMs =
        spec.purged === true
          ? Math.min(t0, first.startMs + retentionDays * 86_400_000)
          : first.startMs + retentionDays * 86_400_000;
      const master: MasterContact = {
        masterContactId,
        callId: legs[0]?.contactId ?? masterContactId,
        legs: groupLegs,
        mediaTypeId,
        endMs,
        interactions,
        readyAtMs,
        purgedAtMs,
        recordingUuid: r.uuid(),
        origin,
        traits: masterTraits,
      };
      this.masters.set(masterContactId, master);
      for (const it of interactions) this.objectByKey.set(it.obj.key, { master, interaction: it });
      ids.push(masterContactId);
    }
    for (const leg of legs) this.insertLeg(leg);
    return ids;
  }

  private insertLeg(leg: Leg): void {
    this.legById.set(leg.contactId, leg);
    let lo = 0;
    let hi = this.legs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.legs[mid];
      if (m && (m.startMs < leg.startMs || (m.startMs === leg.startMs && m.contactId < leg.contactId)))
        lo = mid + 1;
      else hi = mid;
    }
    this.legs.splice(lo, 0, leg);
  }
}
