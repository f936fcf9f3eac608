/**
 * Whether a local storage root folds case (SMB/NTFS mounts, APFS, vfat):
 * there `recordings/ABC_combined.wav` and `recordings/abc_combined.wav` are
 * one file, so `keys.ts` must hash ids holding capitals (cli-contract.md,
 * "What lands in storage"). Probed once when the store opens: a file with
 * a lower-case name is created and looked up by its upper-case name.
 */
import { randomBytes } from 'node:crypto';
import { stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { systemCode } from '../errors.js';

/** The three file operations the probe needs; tests pass a file system that folds case. */
export interface CaseProbeFs {
  /** Creates `path` exclusively (fails when it exists). */
  create(path: string): Promise<void>;
  /** `{ dev, ino }` of `path`; throws ENOENT when there is none. */
  identity(path: string): Promise<{ dev: number; ino: number }>;
  remove(path: string): Promise<void>;
}

const nodeFs: CaseProbeFs = {
  create: (path) => writeFile(path, '', { flag: 'wx', mode: 0o640 }),
  identity: async (path) => {
    const s = await stat(path);
    return { dev: s.dev, ino: s.ino };
  },
  remove: (path) => unlink(path),
};

/**
 * True when `root` (or, while it does not exist yet, the nearest existing
 * directory above it, where it will be created) folds case. A directory
 * the probe cannot write to reports false: nothing can be stored there
 * anyway, and the store's own writes say why.
 */
export async function probeCaseFolding(root: string, fs: CaseProbeFs = nodeFs): Promise<boolean> {
  const name = `.cxrec-case-probe-${randomBytes(8).toString('hex')}`;
  for (let dir = root; ; dir = dirname(dir)) {
    const lower = join(dir, name);
    try {
      await fs.create(lower);
    } catch (err) {
      const code = systemCode(err);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(dir) !== dir) continue;
      return false;
    }
    try {
      const [created, upper] = await Promise.all([
        fs.identity(lower),
        fs.identity(join(dir, name.toUpperCase())).catch((err: unknown) => {
          if (systemCode(err) === 'ENOENT') return undefined;
          throw err;
        }),
      ]);
      return upper !== undefined && upper.dev === created.dev && upper.ino === created.ino;
    } catch {
      return false;
    } finally {
      await fs.remove(lower).catch(() => undefined);
    }
  }
}
