/**
 * The ledger keeps a staged upload as the object key plus the store's
 * token, so a leftover can be discarded without asking CXone for the
 * content type again.
 */
export interface UploadRef {
  key: string;
  token: string;
}

export function encodeUploadRef(ref: UploadRef): string {
  return JSON.stringify([ref.key, ref.token]);
}

export function decodeUploadRef(value: string): UploadRef | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed) && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { key: parsed[0], token: parsed[1] };
    }
  } catch {
    // Not ours: treated as no upload.
  }
  return undefined;
}
