/**
 * Numbered SQL migrations (`NNN_name.sql`), read from the folder next to
 * this module: `src/state/migrations/<backend>` under tsx, and
 * `dist/state/migrations/<backend>` once built (post-build copies them).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { CxrecError } from '../errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const fileName = /^(\d{3})_([a-z0-9_]+)\.sql$/;

export function readMigrations(backend: 'sqlite' | 'postgres'): Migration[] {
  const dir = fileURLToPath(new URL(`./migrations/${backend}/`, import.meta.url));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new CxrecError('ledger', `cannot read the ledger migrations in ${dir}; reinstall cxrec`, {
      cause: err,
    });
  }
  const migrations = names.flatMap((name) => {
    const m = fileName.exec(name);
    if (!m?.[1] || !m[2]) return [];
    return [{ version: Number(m[1]), name: m[2], sql: readFileSync(`${dir}${name}`, 'utf8') }];
  });
  migrations.sort((a, b) => a.version - b.version);
  if (migrations.length === 0) {
    throw new CxrecError('ledger', `no ledger migrations found in ${dir}; reinstall cxrec`);
  }
  return migrations;
}
