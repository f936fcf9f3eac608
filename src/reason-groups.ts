/**
 * Reasons kept in the ledger can carry a detail per row (a size, an id, a
 * byte offset): `no audio … (44 bytes)` and `(10 bytes)` are one problem.
 * A summary or a notification groups rows by `reasonGroup(reason)`, which
 * keeps the words and replaces what varies from row to row, so the groups
 * stay few whether or not the reason already comes without its detail.
 */

/** The reason with its per-row details replaced: quoted values, ids, sizes and numbers in parentheses. */
export function reasonGroup(reason: string): string {
  return reason
    .replace(/"[^"]*"|'[^']*'/g, '"…"')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '…')
    .replace(/\([^()]*\)/g, (inParens) => inParens.replace(/\d+(\.\d+)?/g, 'N'))
    .replace(/\b\d{5,}\b/g, 'N')
    .replace(/\s+/g, ' ')
    .trim();
}

/** `{reason: count}` regrouped by `reasonGroup`, largest first. */
export function groupReasons(byReason: Readonly<Record<string, number>>): Record<string, number> {
  const grouped = new Map<string, number>();
  for (const [reason, n] of Object.entries(byReason)) {
    const group = reasonGroup(reason);
    grouped.set(group, (grouped.get(group) ?? 0) + n);
  }
  return Object.fromEntries([...grouped].sort((a, b) => b[1] - a[1]));
}
