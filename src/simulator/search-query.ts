/**
 * The search body of contract §2, validated as strictly as the platform
 * does: an unknown field, operator, status, a `pageSize` outside 1..100 or
 * a `page` past 1 is a 400 invalid_request, so a client that gets away with
 * it here would not get away with it in production.
 */
import { recordingStatuses, type RecordingStatus } from './options.js';

export type DateOperator = 'gte' | 'gt' | 'lte' | 'lt';

export type SearchFilter =
  | { field: 'status'; statuses: RecordingStatus[] }
  | { field: 'createdDate'; operator: DateOperator; ms: number };

/** A validated query; plain JSON, because a cursor carries it. */
export interface SearchQuery {
  filters: SearchFilter[];
  direction: 'asc' | 'desc';
  pageSize: number;
}

export type ParsedSearch =
  | { kind: 'first'; query: SearchQuery }
  | { kind: 'next'; pageToken: string }
  | { kind: 'invalid'; message: string };

const topLevelFields = new Set(['filters', 'sort', 'pageSize', 'pageToken', 'page']);
const dateOperators = new Set<string>(['gte', 'gt', 'lte', 'lt']);
// ISO-8601 in UTC: a `Z`, or an explicit zero offset. Fractions of a second are accepted and compared exactly.
const isoUtc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|\+00:00)$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStatus(value: unknown): value is RecordingStatus {
  return typeof value === 'string' && (recordingStatuses as readonly string[]).includes(value);
}

export function parseSearchBody(body: unknown): ParsedSearch {
  if (!isRecord(body)) return { kind: 'invalid', message: 'the body must be a JSON object' };
  // The cursor carries the query: whatever else comes with it is ignored (contract §2).
  if (typeof body.pageToken === 'string') return { kind: 'next', pageToken: body.pageToken };
  if (body.pageToken !== undefined && body.pageToken !== null) {
    return { kind: 'invalid', message: 'pageToken must be a string' };
  }
  for (const key of Object.keys(body)) {
    if (!topLevelFields.has(key)) return { kind: 'invalid', message: `unknown field ${key}` };
  }
  if (body.page !== undefined && body.page !== 1) {
    return { kind: 'invalid', message: 'only page 1 may be asked for by number; use nextPageToken' };
  }
  let pageSize = 100;
  if (body.pageSize !== undefined) {
    if (
      typeof body.pageSize !== 'number' ||
      !Number.isInteger(body.pageSize) ||
      body.pageSize < 1 ||
      body.pageSize > 100
    ) {
      return { kind: 'invalid', message: 'pageSize must be an integer within 1..100' };
    }
    pageSize = body.pageSize;
  }
  let direction: 'asc' | 'desc' = 'desc';
  if (body.sort !== undefined) {
    if (!Array.isArray(body.sort) || body.sort.length > 1) {
      return { kind: 'invalid', message: 'sort must be an array with at most one entry' };
    }
    const [entry] = body.sort as unknown[];
    if (entry !== undefined) {
      if (!isRecord(entry) || entry.field !== 'createdDate')
        return { kind: 'invalid', message: 'sort field must be createdDate' };
      if (Object.keys(entry).some((k) => k !== 'field' && k !== 'direction')) {
        return { kind: 'invalid', message: 'sort entries take field and direction only' };
      }
      if (entry.direction !== undefined) {
        if (entry.direction !== 'asc' && entry.direction !== 'desc') {
          return { kind: 'invalid', message: 'sort direction must be asc or desc' };
        }
        direction = entry.direction;
      }
    }
  }
  const filters: SearchFilter[] = [];
  if (body.filters !== undefined) {
    if (!Array.isArray(body.filters)) return { kind: 'invalid', message: 'filters must be an array' };
    for (const raw of body.filters as unknown[]) {
      const parsed = parseFilter(raw);
      if (typeof parsed === 'string') return { kind: 'invalid', message: parsed };
      filters.push(parsed);
    }
  }
  return { kind: 'first', query: { filters, direction, pageSize } };
}

function parseFilter(raw: unknown): SearchFilter | string {
  if (!isRecord(raw)) return 'each filter must be an object';
  if (Object.keys(raw).some((k) => k !== 'field' && k !== 'operator' && k !== 'value')) {
    return 'filters take field, operator and value only';
  }
  const { field, operator, value } = raw;
  if (field === 'status') {
    if (operator === 'eq') {
      return isStatus(value)
        ? { field, statuses: [value] }
        : `status eq needs one of ${recordingStatuses.join(', ')}`;
    }
    if (operator === 'in') {
      if (!Array.isArray(value) || value.length === 0 || !value.every(isStatus)) {
        return `status in needs a non-empty array of ${recordingStatuses.join(', ')}`;
      }
      return { field, statuses: [...new Set(value)] };
    }
    return `unknown operator ${String(operator)} for status`;
  }
  if (field === 'createdDate') {
    if (typeof operator !== 'string' || !dateOperators.has(operator)) {
      return `unknown operator ${String(operator)} for createdDate`;
    }
    if (typeof value !== 'string' || !isoUtc.test(value) || !Number.isFinite(Date.parse(value))) {
      return 'createdDate needs an ISO-8601 UTC timestamp';
    }
    return { field, operator: operator as DateOperator, ms: Date.parse(value) };
  }
  return `unknown filter field ${String(field)}`;
}

/** Whether a recording with this status and createdDate passes every filter (they are ANDed). */
export function matches(query: SearchQuery, status: RecordingStatus, createdMs: number): boolean {
  return query.filters.every((f) => {
    if (f.field === 'status') return f.statuses.includes(status);
    switch (f.operator) {
      case 'gte':
        return createdMs >= f.ms;
      case 'gt':
        return createdMs > f.ms;
      case 'lte':
        return createdMs <= f.ms;
      case 'lt':
        return createdMs < f.ms;
    }
  });
}

/** The createdDate bounds a query allows, as [from, to] inclusive ms (for inserts into the listed window). */
export function createdBounds(query: SearchQuery): [number, number] {
  let from = -Infinity;
  let to = Infinity;
  for (const f of query.filters) {
    if (f.field !== 'createdDate') continue;
    if (f.operator === 'gte') from = Math.max(from, f.ms);
    if (f.operator === 'gt') from = Math.max(from, Math.floor(f.ms / 1000) * 1000 + 1000);
    if (f.operator === 'lte') to = Math.min(to, f.ms);
    if (f.operator === 'lt') to = Math.min(to, Math.ceil(f.ms / 1000) * 1000 - 1000);
  }
  return [from, to];
}
