/**
 * The status page's static files, served by cxrec itself (no CDN, nothing
 * to build): uPlot's browser build and style sheet straight from
 * node_modules, and the page's own small script and style sheet below.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface Asset {
  contentType: string;
  body: Buffer;
}

/**
 * Draws the two charts from the page's JSON block. Plain ES2017 for the
 * browser, no inline script (the page's Content-Security-Policy allows
 * only scripts from cxrec itself).
 */
const chartScript = `'use strict';
(function () {
  var el = document.getElementById('chart-data');
  if (!el || typeof uPlot !== 'function') return;
  var data = JSON.parse(el.textContent || '{}');
  function xs(series) {
    return series.counts.map(function (_, i) { return (series.startMs + i * 60000) / 1000; });
  }
  function draw(id, series, label, color, limit) {
    var target = document.getElementById(id);
    if (!target) return;
    var x = xs(series);
    var cols = [x, series.counts.slice()];
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
    var lines = [{}, { label: label, stroke: color, fill: color + '99', width: 1, paths: bars }];
    if (limit !== undefined) {
      cols.push(x.map(function () { return limit; }));
      lines.push({ label: 'budget', stroke: '#b00020', dash: [6, 4], width: 1 });
    }
    new uPlot({
      width: Math.max(280, target.clientWidth || 480),
      height: 180,
      series: lines,
      scales: { x: { time: true }, y: { range: function (_u, _min, max) { return [0, Math.max(1, max)]; } } },
      axes: [{}, { size: 48 }],
      legend: { show: true },
    }, cols, target);
  }
  draw('chart-stored', data.stored, 'stored', '#1b6ec2');
  draw('chart-budget', data.budget, 'requests', '#2e7d32', data.budgetLimit);
})();
`;

const styleSheet = `body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #1d1d1f; }
header h1 { margin: 1rem 0 0.2rem; font-size: 1.4rem; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 0.4rem; }
table { border-collapse: collapse; margin: 0.3rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.reason { padding-left: 1.6rem; color: #555; }
td.id code { word-break: break-all; }
.pair { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; flex: 1 1 420px; min-width: 300px; }
figcaption { font-weight: 600; margin-bottom: 0.3rem; }
.chart { min-height: 180px; }
.empty { color: #666; }
form { display: flex; gap: 0.5rem; align-items: center; }
input[type=search] { width: 24rem; max-width: 60vw; padding: 0.2rem; }
`;

const require = createRequire(import.meta.url);

function fromPackage(specifier: string, contentType: string): () => Asset {
  let asset: Asset | undefined;
  return () => (asset ??= { contentType, body: readFileSync(require.resolve(specifier)) });
}

const assets: Record<string, () => Asset> = {
  '/assets/uPlot.iife.min.js': fromPackage('uplot/dist/uPlot.iife.min.js', 'text/javascript; charset=utf-8'),
  '/assets/uPlot.min.css': fromPackage('uplot/dist/uPlot.min.css', 'text/css; charset=utf-8'),
  '/assets/status-charts.js': () => ({
    contentType: 'text/javascript; charset=utf-8',
    body: Buffer.from(chartScript),
  }),
  '/assets/status.css': () => ({ contentType: 'text/css; charset=utf-8', body: Buffer.from(styleSheet) }),
};

/** The asset served at `path`, or undefined. */
export function statusAsset(path: string): Asset | undefined {
  return Object.hasOwn(assets, path) ? assets[path]?.() : undefined;
}
