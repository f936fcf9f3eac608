/**
 * The status page (`/` of `cxrec run` with `CXREC_HTTP_PORT`, and `cxrec
 * ui`): server-rendered HTML whose numbers are all in tables, so it reads
 * without JavaScript; two uPlot charts are drawn on top by
 * `/assets/status-charts.js` from a JSON block. Every string from the ledger
 * is scrubbed (`scrubText`: presigned signatures, tokens, passwords) and
 * HTML-escaped: recording ids are hostile input.
 */
import { redactUrlPassword, scrubText } from '../redact.js';
import { finalStates, workingStates, type JobRow, type LedgerCounts } from '../state/ledger.js';

/** The window one `cxrec export` covered (from the ledger's exports table). */
export interface ExportWindowView {
  id: number | string;
  /** ms since epoch or ISO-8601. */
  startedAt: number | string;
  endedAt: number | string | null;
  since: string;
  until: string;
  /** The selection it used (ids file, filters), when not the whole window. */
  selection: string | null;
  exitCode: number | null;
}

/** Counts per minute: `counts[i]` is the minute starting at `startMs + i * 60 000`. */
export interface MinuteSeries {
  startMs: number;
  counts: readonly number[];
}

export interface StatusPageModel {
  /** Which command serves it. */
  mode: 'run' | 'ui';
  generatedAt: number;
  ledgerLocation: string;
  counts: LedgerCounts;
  backlogByAge: readonly { label: string; count: number }[];
  storedPerMinute: MinuteSeries;
  apiBudget: { limitPerMinute: number; perMinute: MinuteSeries; source: string };
  recentFailures: readonly JobRow[];
  exports: readonly ExportWindowView[];
  /** A search by recording or contact id (`/?q=`), with what it found. */
  search?: { query: string; rows: readonly JobRow[]; limit: number } | undefined;
}

const htmlEscapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** HTML-escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => htmlEscapes[c] ?? c);
}

/** Ledger text as it may appear on the page: secrets scrubbed, then escaped. */
function t(value: string | null | undefined): string {
  return value === null || value === undefined ? '' : escapeHtml(scrubText(value));
}

function when(value: number | string | null): string {
  if (value === null) return '';
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isNaN(ms) ? t(String(value)) : new Date(ms).toISOString().replace('.000Z', 'Z');
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function table(head: readonly string[], rows: readonly string[][], empty: string, id?: string): string {
  if (rows.length === 0) return `<p class="empty">${escapeHtml(empty)}</p>`;
  const th = head.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('');
  const body = rows.map((cells) => `<tr>${cells.join('')}</tr>`).join('\n');
  return `<table${id ? ` id="${id}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const td = (html: string, cls?: string): string => `<td${cls ? ` class="${cls}"` : ''}>${html}</td>`;
const num = (n: number): string => td(String(n), 'n');

function countsSection(counts: LedgerCounts): string {
  const rows: string[][] = [];
  for (const state of [...workingStates, ...finalStates]) {
    const n = counts.byState[state] ?? 0;
    rows.push([td(`<strong>${state}</strong>`), `<td class="n" data-state="${state}">${n}</td>`]);
    const reasons = Object.entries(counts.byReason[state as keyof typeof counts.byReason] ?? {})
      .filter(([reason]) => reason !== '')
      .sort((a, b) => b[1] - a[1]);
    for (const [reason, m] of reasons) rows.push([td(t(reason), 'reason'), num(m)]);
  }
  const last = counts.lastError;
  return `<section id="counts"><h2>Recordings by state and reason</h2>
${table(['state / reason', 'rows'], rows, 'no recordings yet', 'state-counts')}
<p>Backlog: <strong id="backlog">${counts.backlog}</strong>${
    counts.oldestBacklogCreatedDate ? ` (oldest created ${t(counts.oldestBacklogCreatedDate)})` : ''
  } · stored: <strong id="stored-bytes">${bytes(counts.storedBytes)}</strong></p>${
    last
      ? `\n<p>Last error: ${when(last.at)} <code>${t(last.recordingId)}</code>/${t(last.channel)} <code>${t(last.code)}</code></p>`
      : ''
  }</section>`;
}

function minuteRows(series: MinuteSeries): string[][] {
  return series.counts.flatMap((n, i) =>
    n === 0 ? [] : [[td(when(series.startMs + i * 60_000).slice(11, 16)), num(n)]],
  );
}

function chartsSection(model: StatusPageModel): string {
  const stored = model.storedPerMinute;
  const budget = model.apiBudget;
  const sum = (s: MinuteSeries): number => s.counts.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...budget.perMinute.counts);
  return `<section id="activity"><h2>The last hour</h2>
<div class="pair">
<figure><figcaption>Stored per minute (${sum(stored)} in the hour)</figcaption>
<div class="chart" id="chart-stored"></div>
<details><summary>as a table</summary>${table(['minute (UTC)', 'stored'], minuteRows(stored), 'nothing stored in the last hour')}</details></figure>
<figure><figcaption>API budget use per minute: busiest ${peak} of ${budget.limitPerMinute} (${t(budget.source)})</figcaption>
<div class="chart" id="chart-budget"></div>
<details><summary>as a table</summary>${table(['minute (UTC)', 'requests'], minuteRows(budget.perMinute), 'no API request in the last hour')}</details></figure>
</div></section>`;
}

function rowCells(r: JobRow): string[] {
  return [
    td(`<code>${t(r.recordingId)}</code>`, 'id'),
    td(t(r.channel)),
    td(t(r.meta.contactIds?.join(', ') ?? r.meta.contactId)),
    td(t(r.meta.createdDate)),
    td(`<strong>${t(r.state)}</strong>`),
    td(t(r.reason)),
    td(r.lastErrorCode ? `<code>${t(r.lastErrorCode)}</code> ${t(r.lastErrorMessage?.slice(0, 200))}` : ''),
    td(t(r.stored?.key)),
    td(when(r.updatedAt)),
  ];
}
const rowHead = [
  'recording',
  'channel',
  'contact',
  'created',
  'state',
  'reason',
  'last error',
  'object',
  'updated',
];

function searchSection(model: StatusPageModel): string {
  const s = model.search;
  const form = `<form method="get" action="/" role="search"><label for="q">Recording or contact id</label>
<input id="q" name="q" type="search" maxlength="200" value="${s ? escapeHtml(s.query) : ''}" autocomplete="off">
<button type="submit">Find</button></form>`;
  if (!s) return `<section id="search"><h2>Search</h2>${form}</section>`;
  const found = table(
    rowHead,
    s.rows.map(rowCells),
    `no row with the recording or contact id ${s.query}`,
    'search-results',
  );
  const more = s.rows.length >= s.limit ? `<p>The first ${s.limit} rows are shown.</p>` : '';
  return `<section id="search"><h2>Search</h2>${form}\n${found}${more}</section>`;
}

function exportsSection(exports: readonly ExportWindowView[]): string {
  const rows = exports.map((e) => [
    td(t(String(e.id))),
    td(when(e.startedAt)),
    td(e.endedAt === null ? 'running or stopped' : when(e.endedAt)),
    td(t(e.since)),
    td(t(e.until)),
    td(e.selection === null ? 'the whole window' : t(e.selection)),
    td(e.exitCode === null ? '' : String(e.exitCode), 'n'),
  ]);
  return `<section id="exports"><h2>Export windows</h2>
${table(['export', 'started', 'ended', 'since', 'until', 'selection', 'exit'], rows, 'no export recorded', 'export-windows')}</section>`;
}

/** The page for `model`; `/assets/…` serve its style sheet and scripts. */
export function renderStatusPage(model: StatusPageModel): string {
  const chartData = {
    stored: model.storedPerMinute,
    budget: model.apiBudget.perMinute,
    budgetLimit: model.apiBudget.limitPerMinute,
  };
  // `<` is escaped so no ledger-derived text can end the JSON block (none goes in it, but keep it so).
  const json = JSON.stringify(chartData).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cxrec status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uPlot.min.css">
<link rel="stylesheet" href="/assets/status.css">
</head><body>
<header><h1>cxrec status</h1>
<p>${model.mode === 'run' ? 'cxrec run' : 'cxrec ui (read only)'} · ledger <code>${t(redactUrlPassword(model.ledgerLocation))}</code> · as of <time id="generated">${when(model.generatedAt)}</time> · <a href="/">refresh</a></p></header>
<main>
${searchSection(model)}
${countsSection(model.counts)}
<section id="backlog-age"><h2>Backlog by age (from createdDate)</h2>
${table(
  ['age', 'rows'],
  model.backlogByAge.map((b) => [td(escapeHtml(b.label)), num(b.count)]),
  'no backlog',
  'backlog-by-age',
)}</section>
${chartsSection(model)}
<section id="failures"><h2>Recent failures</h2>
${table(rowHead, model.recentFailures.map(rowCells), 'no recording failed', 'recent-failures')}</section>
${exportsSection(model.exports)}
</main>
<script type="application/json" id="chart-data">${json}</script>
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/status-charts.js"></script>
</body></html>
`;
}
