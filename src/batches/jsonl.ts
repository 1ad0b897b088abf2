/** JSON Lines as a stream: one line at a time, whatever the chunks, so no file is ever held whole. */

/**
 * The lines of `source`, UTF-8 (a BOM dropped): split at `\n`, a `\r` before it dropped (CRLF files), the
 * last line yielded without a newline too. Blank lines are yielded, so callers count lines as the file does.
 */
export async function* linesOf(source: AsyncIterable<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder('utf-8');
  // Pieces of the line not yet ended: a long line across many chunks is joined once, not re-scanned per chunk.
  let pending: string[] = [];
  const line = (last: string) => {
    const whole = pending.join('') + last;
    pending = [];
    return whole.endsWith('\r') ? whole.slice(0, -1) : whole;
  };
  for await (const chunk of source) {
    const text = decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      yield line(text.slice(start, end));
      start = end + 1;
    }
    if (start < text.length) pending.push(text.slice(start));
  }
  const rest = line(decoder.decode());
  if (rest !== '') yield rest;
}
