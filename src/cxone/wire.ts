/**
 * The CXone wire format (/work/shared/cxone-api.md), validated at the edge
 * with zod: past `parseWire`, the rest of cxrec works with typed values,
 * and a malformed answer is an `invalid_response` that names the field,
 * not a `TypeError` three modules later. Unknown fields are dropped.
 *
 * Only what cxrec relies on is required; descriptive fields CXone may omit
 * for some calls (agent, skill) are optional, so one odd recording does not
 * stop a listing.
 */
import { z } from 'zod';

import { CxrecError } from '../errors.js';

export const recordingStatuses = ['Recording', 'Processing', 'Available', 'Failed'] as const;
export type RecordingStatus = (typeof recordingStatuses)[number];

export const channels = ['combined', 'caller', 'agent'] as const;
export type Channel = (typeof channels)[number];

const isoInstant = z.string().refine((s) => /^\d{4}-\d{2}-\d{2}T/.test(s) && !Number.isNaN(Date.parse(s)), {
  message: 'expected an ISO-8601 date-time',
});

export const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().refine((t) => t.toLowerCase() === 'bearer', { message: 'expected a Bearer token' }),
  expires_in: z.number().positive(),
  /** RFC 6749 §5.1: absent means exactly the requested scopes were granted. */
  scope: z.string().optional(),
});
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

export const recordingSchema = z.object({
  recordingId: z.string().min(1),
  contactId: z.string().optional(),
  status: z.enum(recordingStatuses),
  createdDate: isoInstant,
  durationSeconds: z.number().nonnegative().optional(),
  direction: z.string().optional(),
  agentId: z.string().optional(),
  skillName: z.string().optional(),
});
export type Recording = z.infer<typeof recordingSchema>;

export const searchResponseSchema = z.object({
  recordings: z.array(recordingSchema),
  nextPageToken: z.string().min(1).nullable().optional(),
});
export type SearchResponse = z.infer<typeof searchResponseSchema>;

export const recordingDetailSchema = recordingSchema.extend({
  // A channel name we do not know (a future "screen" channel) is dropped
  // rather than failing the recording: we could not download it anyway.
  availableChannels: z
    .array(z.string())
    .transform((list) => list.filter((c): c is Channel => (channels as readonly string[]).includes(c))),
  retentionExpiresAt: isoInstant.nullable().optional(),
});
export type RecordingDetail = z.infer<typeof recordingDetailSchema>;

export const downloadUrlSchema = z.object({
  url: z.string().refine((u) => URL.canParse(u), { message: 'expected a URL' }),
  contentType: z.string().min(1),
  sizeBytes: z.number().int().nonnegative(),
  channel: z.enum(channels),
});
export type DownloadUrl = z.infer<typeof downloadUrlSchema>;

/** The error body CXone sends with 4xx answers (the descriptions are the platform dialect's). */
export const errorBodySchema = z.object({
  error: z.string().optional(),
  required: z.string().optional(),
  error_description: z.string().optional(),
  errorDescription: z.string().optional(),
  message: z.string().optional(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** A search filter as CXone takes it. */
export type SearchFilter =
  | { field: 'status'; operator: 'eq'; value: RecordingStatus }
  | { field: 'status'; operator: 'in'; value: readonly RecordingStatus[] }
  | { field: 'createdDate'; operator: 'gte' | 'gt' | 'lte' | 'lt'; value: string };

export type SortDirection = 'asc' | 'desc';

/** The JSON body of `GET /api/v2/recording/search`. */
export interface SearchRequestBody {
  filters?: readonly SearchFilter[];
  sort?: readonly [{ field: 'createdDate'; direction: SortDirection }];
  pageSize?: number;
  pageToken?: string;
}

/**
 * Validates `value` against `schema`, or throws `invalid_response` naming
 * the first offending field (never its value: a field may hold a URL).
 */
export function parseWire<T>(schema: z.ZodType<T>, value: unknown, endpoint: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(body)';
  throw new CxrecError(
    'invalid_response',
    `${endpoint} answered with a malformed ${field}: ${issue?.message ?? 'invalid'}`,
    {
      context: { endpoint, field },
    },
  );
}
