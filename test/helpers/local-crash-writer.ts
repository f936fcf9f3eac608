/**
 * A process that dies mid-upload, for the local store's crash test: writes
 * the first `bytes` of `source` to `key` under `root`, prints the resume
 * token and exits without parking, committing or releasing its lock.
 */
import { readFile } from 'node:fs/promises';

import { openLocalObjectStore } from '../../src/storage/local.js';

const [root, key, source, bytes] = process.argv.slice(2);
if (root === undefined || key === undefined || source === undefined || bytes === undefined) {
  throw new Error('usage: local-crash-writer ROOT KEY SOURCE BYTES');
}
const data = (await readFile(source)).subarray(0, Number(bytes));
const store = await openLocalObjectStore(root);
const upload = await store.openUpload(key, { contentType: 'audio/wav', sizeBytes: data.length });
for (let offset = 0; offset < data.length; offset += 64 * 1024) {
  await upload.write(data.subarray(offset, offset + 64 * 1024));
}
process.stdout.write(`${upload.resumeToken}\n`);
process.exit(0);
