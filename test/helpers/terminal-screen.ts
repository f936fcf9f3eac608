/**
 * Counts the lines a terminal would show for some output: `\r` moves the
 * cursor to the start of the line (what follows overwrites), `ESC[2K`
 * clears the line, `\n` ends it, and other escape sequences (colours) draw
 * nothing. What a person sees scroll by, not the bytes written.
 */
export function screenLines(output: string): string[] {
  const lines: string[] = [];
  let line: string[] = [];
  let col = 0;
  for (let i = 0; i < output.length; i++) {
    const ch = output[i]!;
    if (ch === '\x1b') {
      // CSI: ESC [ params final-byte
      const m = /^.\[([0-9;?]*)([@-~])/.exec(output.slice(i, i + 16));
      if (m) {
        if (m[2] === 'K') {
          const mode = m[1] === '' ? '0' : m[1];
          if (mode === '2') line = [];
          else if (mode === '0') line = line.slice(0, col);
        }
        i += m[0].length - 1;
      }
      continue;
    }
    if (ch === '\r') {
      col = 0;
      continue;
    }
    if (ch === '\n') {
      lines.push(line.join('').trimEnd());
      line = [];
      col = 0;
      continue;
    }
    while (line.length < col) line.push(' ');
    line[col] = ch;
    col++;
  }
  if (line.join('').trim() !== '') lines.push(line.join('').trimEnd());
  return lines;
}
