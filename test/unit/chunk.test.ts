import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { chunkText, type TextChunk } from '../../src/documents/chunk';

/** Real Markdown with headings, tables and code: the project's own docs, front door first. */
const ROOT = path.resolve(__dirname, '../..');
const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .sort()
    .map((f) => `docs/${f}`),
]
  .map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8'))
  .join('\n\n');
const isBlank = (s: string) => /^\s*$/.test(s);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What must hold for any text and target: chunks tile the text's non-blank content, in order, within 2× the target. */
function assertWellFormed(text: string, chunks: TextChunk[], target: number) {
  let previousEnd = 0;
  chunks.forEach((c, i) => {
    assert.equal(c.index, i);
    assert.equal(text.slice(c.start, c.end), c.text);
    assert.ok(c.text.length > 0 && c.text.length <= 2 * target, `chunk ${i} has ${c.text.length} characters (target ${target})`);
    assert.ok(!isBlank(c.text[0]!) && !isBlank(c.text.at(-1)!), `chunk ${i} is trimmed`);
    assert.ok(isBlank(text.slice(previousEnd, c.start)), `only white space before chunk ${i}`);
    assert.ok(!LONE_SURROGATE.test(c.text), `chunk ${i} splits no character`);
    previousEnd = c.end;
  });
  assert.ok(isBlank(text.slice(previousEnd)), 'only white space after the last chunk');
}

/** Prose of known sentences: short, long (over the target) and very long (over twice the target), in paragraphs. */
function prose(target: number) {
  const words = ['river', 'stone', 'lantern', 'harbour', 'quietly', 'amber', 'northern', 'signal', 'window', 'paper'];
  const sentence = (n: number, seed: number) => {
    const body = Array.from({ length: n }, (_, i) => words[(seed * 7 + i * 3) % words.length]).join(' ');
    return `${body[0]!.toUpperCase()}${body.slice(1)}${['.', '!', '?', '."'][seed % 4]}`;
  };
  const sentences: string[] = [];
  for (let i = 0; i < 400; i++) {
    const length = i % 37 === 0 ? Math.ceil((2.6 * target) / 6) : i % 11 === 0 ? Math.ceil((1.4 * target) / 6) : 3 + ((i * 5) % 17);
    sentences.push(sentence(length, i));
  }
  const paragraphs: string[] = [];
  for (let i = 0; i < sentences.length; i += 6) paragraphs.push(sentences.slice(i, i + 6).join(' '));
  return { text: paragraphs.join('\n\n'), sentences };
}

describe('chunkText', () => {
  it('packs whole sentences up to the target; only sentences over twice the target are cut, at spaces', () => {
    for (const target of [120, 400, 1000]) {
      const { text, sentences } = prose(target);
      const chunks = chunkText(text, target);
      assertWellFormed(text, chunks, target);
      // Walk the sentences through the chunks: each chunk is whole sentences, or pieces of one very long one.
      let s = 0;
      let offsetInSentence = 0;
      for (const c of chunks) {
        let rest = c.text;
        while (rest.length) {
          const remaining = sentences[s]!.slice(offsetInSentence);
          if (rest.startsWith(remaining)) {
            rest = rest.slice(remaining.length).trimStart();
            s++;
            offsetInSentence = 0;
          } else {
            assert.ok(
              sentences[s]!.length > 2 * target,
              `chunk ${c.index} (target ${target}) cuts sentence ${s} of ${sentences[s]!.length} characters`,
            );
            assert.ok(remaining.startsWith(rest), `chunk ${c.index} continues sentence ${s}`);
            assert.ok(c.text.length <= target, `a piece of a long sentence is at most the target`);
            assert.equal(remaining[rest.length], ' ', 'the cut is at a space');
            offsetInSentence += rest.length + 1;
            rest = '';
          }
        }
      }
      assert.equal(s, sentences.length, 'every sentence is in a chunk');
      // Greedy: the next chunk's first sentence would not have fitted into this one.
      for (let i = 0; i + 1 < chunks.length; i++) {
        const next = chunks[i + 1]!;
        const firstSentence = sentences.find((x) => next.text.startsWith(x)) ?? next.text.slice(0, target + 1);
        assert.ok(next.start + firstSentence.length - chunks[i]!.start > target, `chunk ${i} could have taken the next sentence`);
      }
    }
  });

  it('chunks the docs (headings, tables, code) within bounds, and the same way every time', () => {
    for (const target of [200, 800, 3000]) {
      const chunks = chunkText(DOCS, target);
      assertWellFormed(DOCS, chunks, target);
      assert.deepEqual(chunkText(DOCS, target), chunks);
      const sentenceEnds = chunks
        .slice(0, -1)
        .filter((c) => /[.!?:)`|]$/.test(c.text) || /\n\s*\n/.test(DOCS.slice(c.end, chunks[c.index + 1]!.start)));
      assert.ok(
        sentenceEnds.length >= 0.7 * (chunks.length - 1),
        `most chunks end a sentence or paragraph (${sentenceEnds.length}/${chunks.length - 1})`,
      );
    }
  });

  it('does not end a sentence at an abbreviation followed by a lower-case word, nor inside a number', () => {
    const text = 'Use a ranking, e.g. the recall at ten, for version 3.14 and later. Then stop.';
    assert.deepEqual(
      chunkText(text, 40).map((c) => c.text),
      ['Use a ranking, e.g. the recall at ten, for version 3.14 and later.', 'Then stop.'],
    );
  });

  it('cuts a word longer than the target where it must, never inside a character', () => {
    const text = `${'😀'.repeat(50)} tail.`;
    const chunks = chunkText(text, 7);
    assertWellFormed(text, chunks, 7);
    assert.equal(
      chunks
        .map((c) => c.text)
        .join('')
        .replace(/\s/g, ''),
      text.replace(/\s/g, ''),
    );
  });

  it('splits a megabyte of text in time linear in its length, whatever its shape', () => {
    const shapes = {
      prose: prose(1000).text.repeat(Math.ceil(1_100_000 / prose(1000).text.length)),
      'one endless sentence': 'word '.repeat(220_000),
      'no spaces at all': 'x'.repeat(1_100_000),
      docs: DOCS.repeat(Math.ceil(1_100_000 / DOCS.length)),
    };
    /** The fastest of a few runs: what the work itself costs, without the pauses a busy machine adds to some runs. */
    const fastestMs = (work: () => unknown) => {
      let fastest = Infinity;
      for (let run = 0; run < 3; run++) {
        const started = process.hrtime.bigint();
        work();
        fastest = Math.min(fastest, Number(process.hrtime.bigint() - started) / 1e6);
      }
      return fastest;
    };
    for (const [shape, text] of Object.entries(shapes)) {
      const chunks = chunkText(text, 1000);
      assert.ok(chunks.length >= text.length / 2000, `${shape}: ${chunks.length} chunks`);
      // Against a linear baseline on the same text, in the same process: one white-space test per character, about
      // what chunking does per character. Splitting a megabyte in quadratic time would take about a thousand times that.
      const split = fastestMs(() => chunkText(text, 1000));
      const scan = fastestMs(() => {
        let spaces = 0;
        for (let i = 0; i < text.length; i++) if (/\s/.test(text[i]!)) spaces++;
        return spaces;
      });
      assert.ok(split < 10 * scan, `${shape}: split in ${split.toFixed(1)} ms; testing each character took ${scan.toFixed(1)} ms`);
    }
  });

  it('gives no chunks for blank text and refuses a target that is not a positive integer', () => {
    assert.deepEqual(chunkText('  \n\n \t', 100), []);
    assert.throws(() => chunkText('text', 0), RangeError);
    assert.throws(() => chunkText('text', 1.5), RangeError);
  });
});
