/**
 * `npm run bench`: runs every benchmark (each against a freshly started
 * simulator), prints one table (figure, target, measured, pass/fail) and
 * writes bench/results.json. `npm run bench -- rate-limit export` runs only
 * the benchmarks whose names contain one of the words; BENCH_QUICK=1
 * shortens the long ones (for a smoke run, not for the numbers).
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { cpus, totalmem } from 'node:os';

import type { Benchmark, BenchResult } from './types.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const filters = process.argv.slice(2);

// Benchmarks run the built CLI (dist/), as operators do: build it from the current source first.
execFileSync('npm', ['run', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });

const files = (await readdir(here)).filter((f) => f.endsWith('.bench.ts')).sort();
const results: { benchmark: string; results: BenchResult[]; error?: string }[] = [];
let failed = false;
for (const file of files) {
  const { benchmark } = (await import(new URL(file, import.meta.url).href)) as { benchmark: Benchmark };
  if (filters.length > 0 && !filters.some((f) => benchmark.name.includes(f))) continue;
  process.stderr.write(`== ${benchmark.name}\n`);
  const started = Date.now();
  try {
    const rows = await benchmark.run();
    results.push({ benchmark: benchmark.name, results: rows });
    for (const r of rows) process.stderr.write(`   ${r.figure}: ${r.measured} (target ${r.target})\n`);
  } catch (err) {
    failed = true;
    results.push({ benchmark: benchmark.name, results: [], error: String(err) });
    process.stderr.write(`   FAILED: ${String(err)}\n`);
  }
  process.stderr.write(`   (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

const rows = results.flatMap((b) =>
  b.error === undefined
    ? b.results.map((r) => [
        r.figure,
        r.target,
        r.measured,
        r.pass === undefined ? 'report' : r.pass ? 'pass' : 'FAIL',
      ])
    : [[b.benchmark, '-', b.error.slice(0, 60), 'ERROR']],
);
const header = ['figure', 'target', 'measured', 'result'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
process.stdout.write(
  `${[line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`,
);

// A run of some benchmarks only replaces theirs; the others keep their last results (and dates).
const resultsUrl = new URL('results.json', import.meta.url);
const date = new Date().toISOString();
let kept: { benchmark: string; date?: string }[] = [];
if (filters.length > 0) {
  try {
    const previous = JSON.parse(await readFile(resultsUrl, 'utf8')) as {
      date: string;
      benchmarks: { benchmark: string; date?: string }[];
    };
    kept = previous.benchmarks
      .filter((b) => !results.some((r) => r.benchmark === b.benchmark))
      .map((b) => ({ ...b, date: b.date ?? previous.date }));
  } catch {
    // No earlier results: only this run's.
  }
}
await writeFile(
  resultsUrl,
  `${JSON.stringify(
    {
      date,
      node: process.version,
      cpus: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      quick: process.env.BENCH_QUICK === '1',
      benchmarks: [...kept, ...results.map((r) => ({ ...r, date }))],
    },
    null,
    2,
  )}\n`,
);
if (failed || rows.some((r) => r[3] === 'FAIL')) process.exitCode = 1;
