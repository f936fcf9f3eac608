/**
 * The tenant's recordings: generated from the seed, plus the exact ones a
 * test asks for, with their lifecycle (Recording → Processing → Available
 * or Failed), indexing time, retention and media objects. Status is a pure
 * function of time over each recording's timeline, so nothing ticks in the
 * background and a stopped simulator leaves no timer behind.
 */
import {
  channels as allChannels,
  type Channel,
  type ChannelSpec,
  type EtagKind,
  type MediaContentType,
  type RecordingSpec,
  type RecordingStatus,
} from './options.js';
import { createMediaObject, headerOnlySize, objectHashes, etagFor, type MediaObject } from './media.js';
import type { RealRange } from './tenant-options.js';
import type { ResolvedOptions } from './resolved-options.js';
import { createdBounds, matches, type SearchQuery } from './search-query.js';
import { SeededRandom } from './seeded-random.js';
import { assignTraits } from './trait-plan.js';
import { iso, specDateMs, wholeSecond } from './wire-time.js';

export interface StatusChange {
  status: RecordingStatus;
  /** Wall-clock ms from which this status holds. The first entry also holds before it. */
  atMs: number;
}

export type RecordingTrait =
  'still-processing' | 'failed' | 'purged' | 'never-captured' | 'late-indexed' | 'hostile-id';

/** Where a recording came from: the seeded generator, `extraRecordings`, `addRecordings`, or a listing insert. */
export type RecordingOrigin = 'generated' | 'extra' | 'added' | 'inserted';

export interface TenantRecording {
  readonly id: string;
  readonly contactId: string;
  readonly createdMs: number;
  readonly durationSeconds: number;
  readonly direction: 'inbound' | 'outbound';
  readonly agentId: string;
  readonly skillName: string;
  readonly timeline: readonly StatusChange[];
  /** Search lists the recording from this wall-clock ms on (late indexing). */
  readonly indexedAtMs: number;
  retentionExpiresAtMs: number;
  retentionFieldPresent: boolean;
  readonly captured: readonly Channel[];
  readonly objects: Readonly<Record<Channel, MediaObject>>;
  /** What the media host serves for this recording while it is `Processing` (the trap of contract §4). */
  readonly processingMedia: { kind: 'missing' } | { kind: 'truncated'; fraction: number };
  readonly origin: RecordingOrigin;
  readonly traits: readonly RecordingTrait[];
}

/** What a correct exporter must end with for one channel, under default settings. */
export type ExpectedOutcome = 'stored' | 'purged' | 'media_unavailable' | 'failed_processing';

export interface TruthChannel {
  channel: Channel;
  /** Listed in `availableChannels`; when false the URL leads to a bare header. */
  captured: boolean;
  sizeBytes: number;
  contentType: MediaContentType;
  etag: string | null;
  md5: string;
  sha256: string;
  expected: ExpectedOutcome;
}

export interface TruthRecording {
  recordingId: string;
  contactId: string;
  createdDate: string;
  durationSeconds: number;
  direction: 'inbound' | 'outbound';
  agentId: string;
  skillName: string;
  origin: RecordingOrigin;
  traits: RecordingTrait[];
  /** When search starts listing it (the createdDate unless late-indexed or inserted later). */
  indexedAt: string;
  statusTimeline: { status: RecordingStatus; at: string }[];
  status: RecordingStatus;
  finalStatus: RecordingStatus;
  retentionExpiresAt: string;
  retentionFieldPresent: boolean;
  purged: boolean;
  availableChannels: Channel[];
  channels: TruthChannel[];
}

export interface SimulatorTruth {
  generatedAt: string;
  seed: number;
  createdFrom: string;
  createdTo: string;
  recordings: TruthRecording[];
}

const skills = ['Billing', 'Support', 'Sales', 'Retention', 'Technical', 'Collections'];

/** Ids a client must never use as file names as they stand (contract §2). */
export const hostileIdSamples: readonly string[] = [
  '../x',
  'a/b',
  'with space',
  'résumé-☎-通話',
  'CON',
  '.hidden',
  'a\\b',
  '100%done?#frag',
  'nul.txt:stream',
  'x'.repeat(300),
];

const reservedIds = new Set(['.', '..', 'search']);

export function objectKey(
  id: string,
  channel: Channel,
  createdMs: number,
  contentType: MediaContentType,
): string {
  const d = new Date(createdMs);
  const datePath = `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
  return `recordings/${datePath}/${encodeURIComponent(id)}/${channel}.${contentType === 'audio/wav' ? 'wav' : 'mp3'}`;
}

export class Tenant {
  private readonly random: SeededRandom;
  private readonly insertRandom: SeededRandom;
  private readonly byId = new Map<string, TenantRecording>();
  private readonly byKey = new Map<string, { recording: TenantRecording; channel: Channel }>();
  /** Every recording, ascending by (createdMs, id): the order of the search index. */
  private readonly sorted: TenantRecording[] = [];
  insertedWhileListing = 0;

  constructor(private readonly options: ResolvedOptions) {
    this.random = new SeededRandom(options.seed, 1);
    this.insertRandom = new SeededRandom(options.seed, 3);
    this.generate();
    for (const spec of options.extraRecordings) this.add(this.fromSpec(spec, options.startMs, 'extra'));
  }

  get size(): number {
    return this.sorted.length;
  }

  get(id: string): TenantRecording | undefined {
    return this.byId.get(id);
  }

  objectByKey(key: string): { recording: TenantRecording; channel: Channel } | undefined {
    return this.byKey.get(key);
  }

  ids(): string[] {
    return this.sorted.map((r) => r.id);
  }

  statusAt(recording: TenantRecording, nowMs: number): RecordingStatus {
    let status = recording.timeline[0]?.status ?? 'Available';
    for (const change of recording.timeline) if (change.atMs <= nowMs) status = change.status;
    return status;
  }

  isPurged(recording: TenantRecording, nowMs: number): boolean {
    return nowMs >= recording.retentionExpiresAtMs;
  }

  /** Makes a recording's media purged from now on (test hook). */
  purge(id: string, nowMs: number): void {
    const recording = this.byId.get(id);
    if (!recording) throw new RangeError(`no recording ${id}`);
    recording.retentionExpiresAtMs = nowMs;
    recording.retentionFieldPresent = true;
  }

  /** One page of a query over the index as it is at `nowMs`. */
  page(query: SearchQuery, offset: number, nowMs: number): { items: TenantRecording[]; more: boolean } {
    const hits: TenantRecording[] = [];
    const ordered = query.direction === 'asc' ? this.sorted : [...this.sorted].reverse();
    for (const r of ordered) {
      if (r.indexedAtMs <= nowMs && matches(query, this.statusAt(r, nowMs), r.createdMs)) hits.push(r);
    }
    return {
      items: hits.slice(offset, offset + query.pageSize),
      more: hits.length > offset + query.pageSize,
    };
  }

  /**
   * The listing-insert behaviour: on a follow-up page, maybe index a few
   * Available recordings whose createdDate falls inside the listed window.
   */
  maybeInsertWhileListing(query: SearchQuery, nowMs: number): string[] {
    const plan = this.options.listingInserts;
    if (!plan || this.insertedWhileListing >= plan.max || !this.insertRandom.chance(plan.probability))
      return [];
    const [from, to] = createdBounds(query);
    const lo = Math.ceil(Math.max(from, this.options.createdFromMs) / 1000) * 1000;
    const hi = wholeSecond(Math.min(to, nowMs));
    if (hi < lo) return [];
    const ids: string[] = [];
    const count = Math.min(plan.count, plan.max - this.insertedWhileListing);
    for (let i = 0; i < count; i++) {
      const createdMs = wholeSecond(this.insertRandom.int(lo, hi));
      const recording = this.fromSpec(
        { createdDate: new Date(createdMs) },
        nowMs,
        'inserted',
        this.insertRandom,
      );
      this.add(recording);
      ids.push(recording.id);
    }
    this.insertedWhileListing += ids.length;
    return ids;
  }

  addRecordings(specs: readonly RecordingSpec[], nowMs: number): string[] {
    const built = specs.map((spec) => this.fromSpec(spec, nowMs, 'added'));
    for (const r of built) this.add(r);
    return built.map((r) => r.id);
  }

  async truth(nowMs: number): Promise<SimulatorTruth> {
    const recordings: TruthRecording[] = [];
    for (const r of this.sorted) recordings.push(await this.truthOf(r, nowMs));
    return {
      generatedAt: new Date(nowMs).toISOString(),
      seed: this.options.seed,
      createdFrom: iso(this.options.createdFromMs),
      createdTo: iso(this.options.createdToMs),
      recordings,
    };
  }

  private async truthOf(r: TenantRecording, nowMs: number): Promise<TruthRecording> {
    const finalStatus = r.timeline[r.timeline.length - 1]?.status ?? 'Available';
    const purged = this.isPurged(r, nowMs);
    const truthChannels: TruthChannel[] = [];
    for (const channel of allChannels) {
      const obj = r.objects[channel];
      const captured = r.captured.includes(channel);
      const hashes = await objectHashes(obj);
      let expected: ExpectedOutcome = 'stored';
      if (finalStatus === 'Failed') expected = 'failed_processing';
      else if (!captured) expected = 'media_unavailable';
      else if (purged) expected = 'purged';
      else if (obj.sizeBytes <= 1024) expected = 'media_unavailable';
      truthChannels.push({
        channel,
        captured,
        sizeBytes: obj.sizeBytes,
        contentType: obj.contentType,
        etag: (await etagFor(obj, obj.etagKind)) ?? null,
        md5: hashes.md5,
        sha256: hashes.sha256,
        expected,
      });
    }
    return {
      recordingId: r.id,
      contactId: r.contactId,
      createdDate: iso(r.createdMs),
      durationSeconds: r.durationSeconds,
      direction: r.direction,
      agentId: r.agentId,
      skillName: r.skillName,
      origin: r.origin,
      traits: [...r.traits],
      indexedAt: iso(Math.max(r.indexedAtMs, r.createdMs)),
      statusTimeline: r.timeline.map((c) => ({ status: c.status, at: iso(c.atMs) })),
      status: this.statusAt(r, nowMs),
      finalStatus,
      retentionExpiresAt: iso(r.retentionExpiresAtMs),
      retentionFieldPresent: r.retentionFieldPresent,
      purged,
      availableChannels: [...r.captured],
      channels: truthChannels,
    };
  }

  private add(recording: TenantRecording): void {
    if (this.byId.has(recording.id)) throw new RangeError(`duplicate recording id ${recording.id}`);
    this.byId.set(recording.id, recording);
    for (const channel of allChannels) this.byKey.set(recording.objects[channel].key, { recording, channel });
    // Binary search keeps the index sorted without re-sorting on every insert.
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.sorted[mid];
      if (
        m &&
        (m.createdMs < recording.createdMs || (m.createdMs === recording.createdMs && m.id < recording.id))
      )
        lo = mid + 1;
      else hi = mid;
    }
    this.sorted.splice(lo, 0, recording);
  }

  private generate(): void {
    const { recordings: n, mix } = this.options;
    const traitOf = assignTraits<RecordingTrait>(
      n,
      [
        ['hostile-id', mix.hostileIds],
        ['still-processing', mix.stillProcessing],
        ['failed', mix.failed],
        ['purged', mix.purged],
        ['never-captured', mix.neverCaptured],
        ['late-indexed', mix.lateIndexed],
      ],
      this.random,
    );
    let hostile = 0;
    for (let i = 0; i < n; i++) {
      const trait = traitOf.get(i);
      let id: string | undefined;
      if (trait === 'hostile-id') {
        const base = hostileIdSamples[hostile % hostileIdSamples.length] ?? 'hostile';
        const round = Math.floor(hostile / hostileIdSamples.length);
        id = round === 0 ? base : `${base}-${round}`;
        hostile++;
      }
      this.add(this.generated(trait, id));
    }
  }

  /** A generated recording, built through `fromSpec` so both paths share one set of rules. */
  private generated(trait: RecordingTrait | undefined, id: string | undefined): TenantRecording {
    const { createdFromMs, createdToMs, startMs } = this.options;
    const r = this.random;
    const spec: RecordingSpec = {};
    if (id !== undefined) spec.id = id;
    const traits: RecordingTrait[] = trait ? [trait] : [];
    switch (trait) {
      case 'still-processing':
      case 'failed': {
        // Calls still being processed are recent ones: the last ten minutes of the window.
        const recent = Math.max(createdFromMs, createdToMs - 600_000);
        spec.createdDate = new Date(r.int(Math.ceil(recent / 1000) * 1000, createdToMs - 1));
        spec.status =
          trait === 'failed' && r.chance(0.5) ? 'Failed' : r.chance(0.5) ? 'Recording' : 'Processing';
        spec.finalStatus = trait === 'failed' ? 'Failed' : 'Available';
        break;
      }
      case 'purged':
        spec.createdDate = new Date(r.int(Math.ceil(createdFromMs / 1000) * 1000, createdToMs - 1));
        spec.retentionExpiresAt = new Date(
          r.int(wholeSecond(spec.createdDate.getTime()), Math.min(startMs, createdToMs) - 1000),
        );
        break;
      case 'never-captured':
        spec.channels = Object.fromEntries(
          r.pick<Channel[]>([['caller', 'agent'], ['caller'], ['agent'], []]).map((c) => [c, {}]),
        );
        break;
      case 'late-indexed':
        spec.lateIndexMs = r.int(...this.options.lifecycle.lateIndexRealMs) * this.options.timeScale;
        break;
      case 'hostile-id':
      case undefined:
        break;
    }
    return this.fromSpec(spec, startMs, 'generated', r, traits);
  }

  private fromSpec(
    spec: RecordingSpec,
    t0: number,
    origin: RecordingOrigin,
    r: SeededRandom = this.random,
    traits: RecordingTrait[] = [],
  ): TenantRecording {
    const { createdFromMs, createdToMs, media, lifecycle, timeScale, mix, retentionDays } = this.options;
    const id = spec.id ?? r.uuid();
    if (id === '' || reservedIds.has(id))
      throw new RangeError(`recording id ${JSON.stringify(id)} is one the platform never issues`);
    const createdMs = wholeSecond(
      spec.createdDate !== undefined
        ? specDateMs(spec.createdDate)
        : r.int(Math.ceil(createdFromMs / 1000) * 1000, createdToMs - 1),
    );
    const contentType: MediaContentType = r.chance(media.mpegFraction) ? 'audio/mpeg' : 'audio/wav';
    const channelSpecs: Partial<Record<Channel, ChannelSpec | false>> =
      spec.channels ?? (r.chance(0.5) ? { combined: {}, caller: {}, agent: {} } : { combined: {} });
    const captured = allChannels.filter((c) => channelSpecs[c] !== undefined && channelSpecs[c] !== false);
    if (
      captured.length < allChannels.length &&
      spec.channels !== undefined &&
      !traits.includes('never-captured')
    ) {
      if (!captured.includes('combined')) traits.push('never-captured');
    }
    const objects = {} as Record<Channel, MediaObject>;
    for (const channel of allChannels) {
      const cs = channelSpecs[channel];
      const ct = (cs ? cs.contentType : undefined) ?? contentType;
      const key = objectKey(id, channel, createdMs, ct);
      if (!cs) {
        objects[channel] = createMediaObject(
          {
            key,
            recordingId: id,
            channel,
            sizeBytes: headerOnlySize(ct),
            contentType: ct,
            etagKind: 'md5',
            headerOnly: true,
          },
          this.options.seed,
        );
        continue;
      }
      const sizeBytes = cs.sizeBytes ?? r.int(media.minBytes, media.maxBytes);
      if (!(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0))
        throw new RangeError(`sizeBytes must be an integer ≥ 0`);
      let etagKind: EtagKind = 'md5';
      if (sizeBytes >= media.multipartThresholdBytes) etagKind = 'multipart';
      else if (r.chance(mix.noEtag)) etagKind = 'none';
      else if (r.chance(mix.multipartEtag)) etagKind = 'multipart';
      objects[channel] = createMediaObject(
        {
          key,
          recordingId: id,
          channel,
          sizeBytes,
          contentType: ct,
          etagKind: cs.etag ?? etagKind,
          headerOnly: false,
        },
        this.options.seed,
      );
    }

    const draw = (range: RealRange): number => r.int(Math.round(range[0]), Math.round(range[1]));
    const processingReal = (): number =>
      spec.processingMs !== undefined
        ? spec.processingMs / timeScale
        : draw(
            r.chance(lifecycle.longProcessingFraction)
              ? lifecycle.longProcessingRealMs
              : lifecycle.processingRealMs,
          );
    const status = spec.status ?? 'Available';
    const finalStatus = spec.finalStatus ?? 'Available';
    const timeline: StatusChange[] = [{ status, atMs: createdMs }];
    if (status === 'Recording') {
      const recordingEnd =
        t0 +
        (spec.recordingMs !== undefined ? spec.recordingMs / timeScale : draw(lifecycle.recordingRealMs));
      timeline.push({ status: 'Processing', atMs: recordingEnd });
      timeline.push({ status: finalStatus, atMs: recordingEnd + processingReal() });
    } else if (status === 'Processing') {
      timeline.push({ status: finalStatus, atMs: t0 + processingReal() });
    }
    if (status !== 'Available' && !traits.includes('still-processing') && finalStatus === 'Available') {
      traits.push('still-processing');
    }
    if ((status === 'Failed' || finalStatus === 'Failed') && !traits.includes('failed'))
      traits.push('failed');

    let retentionFieldPresent = true;
    let retentionExpiresAtMs = createdMs + retentionDays * 86_400_000;
    if (spec.retentionExpiresAt === null) retentionFieldPresent = false;
    else if (spec.retentionExpiresAt !== undefined)
      retentionExpiresAtMs = wholeSecond(specDateMs(spec.retentionExpiresAt));
    else if (spec.purged === true)
      retentionExpiresAtMs = Math.min(wholeSecond(t0) - 1000, retentionExpiresAtMs);
    else if (r.chance(mix.noRetentionField)) retentionFieldPresent = false;
    if (retentionExpiresAtMs <= t0 && !traits.includes('purged')) traits.push('purged');

    const indexedAtMs =
      spec.lateIndexMs !== undefined && spec.lateIndexMs > 0 ? t0 + spec.lateIndexMs / timeScale : -Infinity;
    if (indexedAtMs > t0 && !traits.includes('late-indexed')) traits.push('late-indexed');
    if (
      spec.id !== undefined &&
      hostileIdSamples.some((h) => spec.id?.startsWith(h)) &&
      !traits.includes('hostile-id')
    ) {
      traits.push('hostile-id');
    }

    return {
      id,
      contactId: spec.contactId ?? String(r.int(100_000_000, 999_999_999)),
      createdMs,
      durationSeconds: spec.durationSeconds ?? r.int(5, 1800),
      direction: spec.direction ?? (r.chance(0.6) ? 'inbound' : 'outbound'),
      agentId: spec.agentId ?? String(r.int(10_000, 99_999)),
      skillName: spec.skillName ?? r.pick(skills),
      timeline,
      // Inserted and added recordings appear from the moment they are added.
      indexedAtMs: origin === 'inserted' || origin === 'added' ? Math.max(indexedAtMs, t0) : indexedAtMs,
      retentionExpiresAtMs,
      retentionFieldPresent,
      captured,
      objects,
      processingMedia: r.chance(0.5)
        ? { kind: 'missing' }
        : { kind: 'truncated', fraction: r.int(10, 90) / 100 },
      origin,
      traits,
    };
  }
}
