/**
 * The platform dialect's wire format (`cxone-platform-api.md`), validated
 * and normalised at the edge with zod: past this file every contact has
 * one spelling and one type per field, whatever API version or tenant
 * sent it. Unknown fields are dropped.
 *
 * Versions below v26.0 spell `contactStartDate`, `fromAddress`,
 * `toAddress`, `mediaTypeId` as `contactStart`, `fromAddr`, `toAddr`,
 * `mediaType`, and some tenants send every value as a string
 * (`"contactId": "2789879875"`, `"isLogged": "True"`): both are accepted.
 * Ids are kept as decimal strings (up to 15 digits; never arithmetic).
 */
import { z } from 'zod';

/** The issuer's `/.well-known/openid-configuration`: only the token endpoint matters. */
export const openIdConfigurationSchema = z.object({
  issuer: z.string().optional(),
  token_endpoint: z.string().refine((u) => URL.canParse(u), { message: 'expected a URL' }),
});

const seconds = z.union([z.number(), z.string().regex(/^\d+(\.\d+)?$/)]).transform(Number);

/** The token endpoint's 200 (password and refresh_token grants alike). */
export const platformTokenSchema = z.object({
  access_token: z.string().min(1),
  token_type: z
    .string()
    .refine((t) => t.toLowerCase() === 'bearer', { message: 'expected a Bearer token' })
    .optional(),
  /** Absent: the lifetime is read from the token's `exp` and `iat`. */
  expires_in: seconds.pipe(z.number().positive()).optional(),
  refresh_token: z.string().min(1).nullish(),
});
export type PlatformToken = z.infer<typeof platformTokenSchema>;

/** `/.well-known/cxone-configuration?tenantId=…`: where the tenant's API lives. */
export const cxoneConfigurationSchema = z.object({
  api_endpoint: z.string().refine((u) => URL.canParse(u), { message: 'expected a URL' }),
  area: z.string().optional(),
  tenantId: z.string().optional(),
});

/** Old spellings of a field, tried when the current one is absent. */
const oldSpellings = {
  contactStartDate: ['contactStart'],
  fromAddress: ['fromAddr'],
  toAddress: ['toAddr'],
  mediaTypeId: ['mediaType'],
} as const satisfies Record<string, readonly string[]>;

function missing(name: string): (issue: { input?: unknown }) => string | undefined {
  const old = (oldSpellings as Record<string, readonly string[] | undefined>)[name];
  return (issue) =>
    issue.input === undefined
      ? `missing (sent as neither ${[name, ...(old ?? [])].join(' nor ')})`
      : undefined;
}

/** A decimal id from a number or a string; `-1`-style "none" ids pass for the optional ones. */
function decimalId(name: string) {
  return z
    .union([z.string().regex(/^-?\d+$/), z.number().int().refine(Number.isSafeInteger)], {
      error: missing(name),
    })
    .transform(String);
}

function number(name: string) {
  return z
    .union([z.number(), z.string().regex(/^-?\d+(\.\d+)?$/)], { error: missing(name) })
    .transform(Number);
}

function text(name: string) {
  return z.union([z.string(), z.number()], { error: missing(name) }).transform(String);
}

const flexibleBoolean = z.union([z.boolean(), z.number(), z.string()]).transform((v, ctx) => {
  const s = String(v).trim().toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  ctx.addIssue({ code: 'custom', message: 'expected a boolean' });
  return z.NEVER;
});

/**
 * An instant, normalised to `toISOString()` form. One without a zone is
 * read as UTC: the Reporting API works in UTC throughout.
 */
function instant(name: string) {
  return z.string({ error: missing(name) }).transform((s, ctx) => {
    const trimmed = s.trim();
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(trimmed) ? trimmed : `${trimmed}Z`;
    const ms = /^\d{4}-\d{2}-\d{2}T/.test(trimmed) ? Date.parse(zoned) : NaN;
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: 'expected an ISO-8601 date-time' });
      return z.NEVER;
    }
    return new Date(ms).toISOString();
  });
}

/** Copies old spellings to the current names and drops `null`/empty values, so `optional()` means absent. */
function canonicalContact(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value !== null && value !== '') out[key] = value;
  }
  for (const [name, olds] of Object.entries(oldSpellings)) {
    if (out[name] !== undefined) continue;
    const old = olds.map((o) => out[o]).find((v) => v !== undefined);
    if (old === undefined) continue;
    // Old versions' `mediaType` is the id ("4"); a name there is kept as the name.
    if (
      name === 'mediaTypeId' &&
      !(typeof old === 'number' || (typeof old === 'string' && /^\d+$/.test(old)))
    ) {
      out.mediaTypeName ??= old;
      continue;
    }
    out[name] = old;
  }
  return out;
}

export const completedContactSchema = z.preprocess(
  canonicalContact,
  z.object({
    contactId: decimalId('contactId'),
    /** The call's id: every leg of a transfer shares it (until NICE assigns a new one, see §3). */
    masterContactId: decimalId('masterContactId'),
    contactStartDate: instant('contactStartDate'),
    /** The call ends at `contactStartDate + totalDurationSeconds`, which decides when to ask for media. */
    totalDurationSeconds: number('totalDurationSeconds').pipe(z.number().nonnegative()),
    lastUpdateTime: instant('lastUpdateTime').optional(),
    mediaTypeId: number('mediaTypeId').pipe(z.number().int()).optional(),
    mediaTypeName: text('mediaTypeName').optional(),
    agentId: decimalId('agentId').optional(),
    firstName: text('firstName').optional(),
    lastName: text('lastName').optional(),
    skillId: decimalId('skillId').optional(),
    skillName: text('skillName').optional(),
    teamId: decimalId('teamId').optional(),
    campaignId: decimalId('campaignId').optional(),
    fromAddress: text('fromAddress').optional(),
    toAddress: text('toAddress').optional(),
    isOutbound: flexibleBoolean.optional(),
    abandoned: flexibleBoolean.optional(),
    isLogged: flexibleBoolean.optional(),
    endReason: text('endReason').optional(),
  }),
);
/** One leg of a call as `contacts/completed` lists it, in one spelling. */
export type CompletedContact = z.infer<typeof completedContactSchema>;

export const completedContactsResponseSchema = z.object({
  totalRecords: number('totalRecords').pipe(z.number().int().nonnegative()).optional(),
  lastPollTime: instant('lastPollTime').nullish(),
  _links: z
    .object({
      next: z.string().nullish(),
    })
    .nullish(),
  completedContacts: z.array(completedContactSchema),
});

const optionalInstant = z.string().nullish();

/** The media playback answer; only what leads to the audio is kept. */
export const playbackResponseSchema = z.object({
  contactId: z.string().nullish(),
  acdcontactId: z.union([z.string(), z.number()]).nullish(),
  interactions: z.array(
    z.object({
      mediaType: z.string().nullish(),
      channelType: z.string().nullish(),
      startTime: optionalInstant,
      endTime: optionalInstant,
      data: z
        .object({
          fileToPlayUrl: z.string().nullish(),
          startTime: optionalInstant,
          endTime: optionalInstant,
        })
        .nullish(),
    }),
  ),
});
export type PlaybackResponse = z.infer<typeof playbackResponseSchema>;
