/**
 * Splits text into chunks of about `targetChars` characters that end where sentences end. Sentences are
 * packed into a chunk while it stays within the target; a sentence longer than the target stands alone,
 * and only one longer than twice the target is cut, at spaces between words. Pure and deterministic,
 * one pass over the text.
 */

export interface TextChunk {
  index: number;
  /** Where the chunk is in the text: `text.slice(start, end) === chunk.text`. */
  start: number;
  end: number;
  text: string;
}

/**
 * Where a sentence ends: . ! ? … (and closing quotes or brackets) before white space and a next word that
 * does not start in lower case (so "e.g. this" goes on); the CJK full stops; a blank line.
 */
const SENTENCE_END = /[.!?…]+["'”’»)\]]*\s+(?![\s\p{Ll}])|[。！？]+\s*|\n[ \t]*\n\s*/gu;
const SPACE = /\s/;

export function chunkText(text: string, targetChars: number): TextChunk[] {
  if (!Number.isInteger(targetChars) || targetChars < 1) throw new RangeError(`targetChars must be a positive integer, not ${targetChars}`);
  const chunks: TextChunk[] = [];
  const push = (start: number, end: number) => chunks.push({ index: chunks.length, start, end, text: text.slice(start, end) });
  const skipSpace = (i: number) => {
    while (i < text.length && SPACE.test(text[i]!)) i++;
    return i;
  };
  const trimEnd = (i: number) => {
    while (i > 0 && SPACE.test(text[i - 1]!)) i--;
    return i;
  };

  // The chunk being filled: [start, end), or start = -1 when there is none.
  let start = -1;
  let end = -1;
  for (const [sentenceStart, sentenceEnd] of sentences(text)) {
    const from = skipSpace(sentenceStart);
    const to = trimEnd(sentenceEnd);
    if (to <= from) continue;
    if (start >= 0 && to - start <= targetChars) {
      end = to;
      continue;
    }
    if (start >= 0) push(start, end);
    let piece = from;
    if (to - from > 2 * targetChars) {
      while (to - piece > targetChars) {
        const cut = wordCut(text, piece, piece + targetChars);
        push(piece, trimEnd(cut));
        piece = skipSpace(cut);
      }
    }
    start = piece;
    end = to;
  }
  if (start >= 0) push(start, end);
  return chunks;
}

/** [start, end) of each sentence, its trailing white space included. */
function* sentences(text: string): Generator<[number, number]> {
  let start = 0;
  for (const match of text.matchAll(SENTENCE_END)) {
    const end = match.index + match[0].length;
    yield [start, end];
    start = end;
  }
  if (start < text.length) yield [start, text.length];
}

/** The last space in (from, limit]; without one, `limit` itself, moved off the middle of a surrogate pair. */
function wordCut(text: string, from: number, limit: number): number {
  for (let i = limit; i > from; i--) if (SPACE.test(text[i]!)) return i;
  const code = text.charCodeAt(limit);
  if (code < 0xdc00 || code > 0xdfff) return limit;
  return limit - 1 > from ? limit - 1 : limit + 1;
}
