/**
 * The `--config FILE` of settings: a YAML mapping of setting names to
 * values. Two rules keep it safe for secrets:
 *
 * - Every value is read as the text written. YAML's core schema would turn
 *   `CXONE_CLIENT_SECRET: 0123` into `123`, `0x1F` into `31` and a long
 *   number into a rounded float without a word; the failsafe schema keeps
 *   scalars as strings, and the settings schema parses them.
 * - An error names the file, the setting, the line and the column, never
 *   the text found there (a malformed line may hold a secret).
 */
import { readFileSync } from 'node:fs';

import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';

import { CxrecError } from './errors.js';

/** Plain (unquoted) scalars that mean "no value", as YAML's core schema reads them. */
const nullScalars = new Set(['', '~', 'null', 'Null', 'NULL']);

/** Reads `path` into setting name → text; `known` are the names it may hold. */
export function readConfigFile(path: string, known: ReadonlySet<string>): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CxrecError(
      'config_invalid',
      `--config ${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { schema: 'failsafe', prettyErrors: false, lineCounter });
  const first = doc.errors[0];
  if (first) {
    const { line, col } = lineCounter.linePos(first.pos[0]);
    const setting = settingOnLine(text, line);
    throw new CxrecError(
      'config_invalid',
      `--config ${path}: not valid YAML at line ${line}, column ${col}` +
        `${setting === undefined ? '' : ` (setting ${setting})`}: ${first.code.toLowerCase().replace(/_/g, ' ')}` +
        ' (the value is not shown; quote values that start with @, `, %, ! or hold ": ")',
    );
  }
  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && nullScalars.has(String(contents.value)))) return {};
  if (!isMap(contents)) {
    throw new CxrecError(
      'config_invalid',
      `--config ${path}: must be a mapping of setting names to values, e.g. CXREC_CONCURRENCY: 4`,
    );
  }
  const out: Record<string, string> = {};
  const problems: string[] = [];
  for (const pair of contents.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    const where = isScalar(pair.key) ? lineOf(pair.key, lineCounter) : '';
    if (key === undefined || !known.has(key)) {
      problems.push(
        `${key ?? 'a key'} is not a cxrec setting${where} (settings are the environment variable names, e.g. CXREC_CONCURRENCY)`,
      );
      continue;
    }
    const value = pair.value as Node | null;
    if (value === null) continue;
    if (isScalar(value)) {
      const textValue = String(value.value);
      if (value.type === 'PLAIN' && nullScalars.has(textValue)) continue;
      out[key] = textValue;
    } else if (isSeq(value)) {
      const items = value.items.map((item) => (isScalar(item) ? String(item.value) : undefined));
      if (items.some((item) => item === undefined)) {
        problems.push(`${key} must be a list of single values${where}`);
      } else {
        out[key] = items.join(',');
      }
    } else {
      problems.push(`${key} must be a single value, not a mapping${where}`);
    }
  }
  if (problems.length > 0) {
    throw new CxrecError('config_invalid', `--config ${path}:\n  ${problems.join('\n  ')}`);
  }
  return out;
}

function lineOf(node: Node, lineCounter: LineCounter): string {
  const start = node.range?.[0];
  return start === undefined ? '' : ` at line ${lineCounter.linePos(start).line}`;
}

/** The setting name a line starts with (`NAME:`), which is safe to show; never the value. */
function settingOnLine(text: string, line: number): string | undefined {
  const lineText = text.split(/\r?\n/)[line - 1] ?? '';
  return /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:/.exec(lineText)?.[1];
}
