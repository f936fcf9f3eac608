/**
 * docs/grafana-dashboard.json and docs/prometheus-alerts.yml only name
 * metrics that `cxrec run` registers, so a renamed metric cannot leave a
 * panel empty or an alert silent.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { parse } from 'yaml';

import { createServiceMetrics } from '../../src/service/metrics.js';
import type { Ledger } from '../../src/state/ledger.js';

const docs = new URL('../../docs/', import.meta.url);

function registeredNames(): { name: string; type: string }[] {
  const metrics = createServiceMetrics({
    // Nothing is collected here: only the names are read.
    ledger: {} as Ledger,
    apiStats: () => undefined,
    retentionDays: 90,
    now: () => Date.now(),
  });
  return metrics.registry.getMetricsAsArray().map((m) => ({ name: m.name, type: String(m.type) }));
}

/** Every `cxrec_…` name in an expression, a histogram's series mapped back to the histogram. */
function unknownMetrics(expr: string, known: { name: string; type: string }[]): string[] {
  const names = new Set(known.map((m) => m.name));
  const histograms = new Set(known.filter((m) => m.type === 'histogram').map((m) => m.name));
  const out: string[] = [];
  for (const [name] of expr.matchAll(/\bcxrec_[a-z0-9_]+\b/g)) {
    const base = name.replace(/_(bucket|count|sum)$/, '');
    if (names.has(name) || (base !== name && histograms.has(base))) continue;
    out.push(name);
  }
  return out;
}

function exprsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) exprsIn(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'expr' && typeof v === 'string') out.push(v);
      else exprsIn(v, out);
    }
  }
  return out;
}

test('the Grafana dashboard parses and every metric it queries is registered', () => {
  const dashboard = JSON.parse(readFileSync(new URL('grafana-dashboard.json', docs), 'utf8')) as {
    panels: unknown[];
  };
  const exprs = exprsIn(dashboard.panels);
  assert.ok(exprs.length >= 10, 'panels have queries');
  const known = registeredNames();
  for (const expr of exprs) assert.deepEqual(unknownMetrics(expr, known), [], expr);
  // Not a test that cannot fail: a made-up name is caught.
  assert.deepEqual(unknownMetrics('rate(cxrec_nope_total[5m])', known), ['cxrec_nope_total']);
});

test('the Prometheus alerts parse, cover what an operator must hear of, and name registered metrics', () => {
  const doc = parse(readFileSync(new URL('prometheus-alerts.yml', docs), 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string }[] }[];
  };
  const rules = doc.groups.flatMap((g) => g.rules);
  const known = registeredNames();
  for (const rule of rules) {
    assert.equal(typeof rule.expr, 'string', rule.alert);
    assert.deepEqual(unknownMetrics(rule.expr, known), [], `${rule.alert}: ${rule.expr}`);
  }
  const all = rules.map((r) => r.expr).join('\n');
  for (const metric of [
    'cxrec_backlog_oldest_age_seconds',
    'cxrec_recordings{state="failed"}',
    'cxrec_rate_limited_total',
    'cxrec_rate_limit_per_minute',
    'cxrec_last_discovery_success_timestamp_seconds',
  ]) {
    assert.ok(all.includes(metric), `an alert on ${metric}`);
  }
});
