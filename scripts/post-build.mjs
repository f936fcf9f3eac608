#!/usr/bin/env node
// tsc neither marks the bin executable nor copies the SQL migrations.
import { chmodSync, cpSync, existsSync } from 'node:fs';

chmodSync('dist/cli.js', 0o755);
if (existsSync('src/state/migrations')) {
  cpSync('src/state/migrations', 'dist/state/migrations', {
    recursive: true,
    filter: (p) => !p.endsWith('.ts'),
  });
}
