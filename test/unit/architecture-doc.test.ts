/**
 * docs/architecture.md names files and functions so a reader can check
 * them; this test checks them: every `file.ts` it names exists under src/,
 * and every function or field it names in backticks (`camelCase`,
 * `PascalCase`, `name()`) is still written somewhere in src/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const root = new URL('../../', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : [join(dir, e.name)],
  );
}

test('every file and function docs/architecture.md names exists in src/', () => {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const files = sourceFiles(join(root, 'src')).map((f) => relative(join(root, 'src'), f));
  const source = files
    .filter((f) => f.endsWith('.ts') || f.endsWith('.sql'))
    .map((f) => readFileSync(join(root, 'src', f), 'utf8'))
    .join('\n');
  // Paths in the flow diagram and inside backticks.
  const named = new Set<string>();
  for (const m of doc.matchAll(/([A-Za-z0-9_/.-]+\.(?:ts|sql))\b/g))
    named.add((m[1] as string).replace(/^\/+/, ''));
  const missingFiles = [...named].filter(
    (name) => !files.some((f) => f === name || f.endsWith(`/${name}`) || name.endsWith(`/${f}`)),
  );
  assert.deepEqual(missingFiles, [], 'files named in docs/architecture.md but not in src/');

  const identifiers = new Set<string>();
  for (const m of doc.matchAll(/`([A-Za-z_][A-Za-z0-9_.]*)(?:\(\))?`/g)) {
    const name = m[1] as string;
    // Code names only: camelCase or PascalCase with an inner capital, or Class.method.
    if (/^[a-z]+[A-Z]\w*$|^[A-Z][a-z]+[A-Z]\w*$|^[A-Z]\w+\.\w+$/.test(name)) identifiers.add(name);
  }
  const missing = [...identifiers].filter((name) =>
    name.split('.').some((part) => !new RegExp(`\\b${part}\\b`).test(source)),
  );
  assert.deepEqual(missing, [], 'names in docs/architecture.md that src/ no longer has');
});
