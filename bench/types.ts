/** One row of the benchmark table (`npm run bench`). */
export interface BenchResult {
  /** What is measured, e.g. "API rate / limit (600/min, 60 s)". */
  figure: string;
  /** The target as written in the issue, e.g. "≥ 0.9". */
  target: string;
  /** The measured value, already formatted with its unit. */
  measured: string;
  /** Whether the target is met; `undefined` for figures that are only reported. */
  pass: boolean | undefined;
  /** Raw numbers for bench/results.json. */
  details?: Record<string, unknown>;
}

/** A benchmark module exports `name` and `run`. */
export interface Benchmark {
  name: string;
  run(): Promise<BenchResult[]>;
}
