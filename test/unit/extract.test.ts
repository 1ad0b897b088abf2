import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { detectDocumentType, UnsupportedDocumentError } from '../../src/documents/detect';
import { extractText } from '../../src/documents/extract';

const ROOT = path.resolve(__dirname, '../..');
const bytes = (s: string) => new TextEncoder().encode(s);

const PAGES = [
  ['Page one opens the report.', 'Revenue grew in every region.'],
  ['Page two covers the risks.', 'Supply chains stayed fragile.'],
  ['Page three holds the outlook.', 'The board expects steady growth.'],
];

async function makePdf(pages: string[][]): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const lines of pages) {
    const page = doc.addPage([595, 842]);
    lines.forEach((line, i) => page.drawText(line, { x: 50, y: 780 - i * 20, size: 12, font }));
  }
  return doc.save();
}

const unsupported = (reason: RegExp) => (err: unknown) => err instanceof UnsupportedDocumentError && reason.test(err.reason);

describe('detecting the document type', () => {
  it('knows a PDF by its header, whatever it is called', async () => {
    const pdf = await makePdf([['x']]);
    assert.equal(detectDocumentType(pdf), 'pdf');
    assert.equal(detectDocumentType(pdf, { contentType: 'application/octet-stream', filename: 'scan.bin' }), 'pdf');
    assert.equal(detectDocumentType(pdf, { contentType: 'application/pdf' }), 'pdf');
    assert.equal(detectDocumentType(Buffer.concat([Buffer.from('\r\n\0\0'), pdf])), 'pdf', 'junk before the header');
    assert.throws(() => detectDocumentType(bytes('just text'), { contentType: 'application/pdf' }), unsupported(/does not start like one/));
  });

  it('knows HTML by its content type or its first tag', () => {
    assert.equal(detectDocumentType(bytes('<p>hi</p>'), { contentType: 'text/html; charset=utf-8' }), 'html');
    assert.equal(detectDocumentType(bytes('\uFEFF  <!DOCTYPE html><html><body>x</body></html>')), 'html');
    assert.equal(detectDocumentType(bytes('<!-- generated -->\n<html lang="en">…')), 'html');
    assert.equal(detectDocumentType(bytes('<p>a fragment</p>'), { filename: 'page.htm' }), 'html');
    assert.equal(detectDocumentType(bytes('<p>a fragment</p>')), 'text', 'a fragment without a name or type is text');
  });

  it('knows Markdown by its content type or file name, and everything else that is UTF-8 is text', () => {
    assert.equal(detectDocumentType(bytes('# Title'), { contentType: 'text/markdown' }), 'markdown');
    assert.equal(detectDocumentType(bytes('# Title'), { filename: 'README.MD' }), 'markdown');
    assert.equal(detectDocumentType(bytes('# Title'), { contentType: 'text/plain', filename: 'notes.markdown' }), 'markdown');
    assert.equal(detectDocumentType(bytes('Grüße, 東京. ✓'), { contentType: 'text/plain' }), 'text');
    assert.equal(detectDocumentType(bytes('plain words'), { contentType: 'application/octet-stream' }), 'text');
    assert.equal(detectDocumentType(bytes('log line'), { contentType: 'text/csv' }), 'text');
    const cutInsideACharacter = bytes('ab✓').subarray(0, 3);
    assert.equal(detectDocumentType(cutInsideACharacter), 'text');
  });

  it('refuses images, archives, binaries and declared types it cannot read', () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const zip = Buffer.from('504b0304140000000800', 'hex');
    assert.throws(() => detectDocumentType(png), unsupported(/binary/));
    assert.throws(() => detectDocumentType(zip, { filename: 'report.docx' }), unsupported(/binary/));
    assert.throws(() => detectDocumentType(Buffer.from([0xc3, 0x28, 0x41])), unsupported(/binary/), 'invalid UTF-8');
    assert.throws(
      () => detectDocumentType(bytes('text'), { contentType: 'image/png' }),
      unsupported(/^image\/png is not a supported document type/),
    );
    assert.throws(() => detectDocumentType(bytes('text'), { contentType: 'application/zip' }), unsupported(/application\/zip/));
  });
});

describe('extracting text', () => {
  it('reads every page of a PDF, in order, a blank line between pages', async () => {
    const text = await extractText(await makePdf(PAGES), 'pdf');
    const pages = text.split('\n\n');
    assert.equal(pages.length, 3, text);
    PAGES.forEach((lines, i) => {
      for (const line of lines) assert.ok(pages[i]!.includes(line), `page ${i + 1} has "${line}":\n${pages[i]}`);
    });
  });

  it('refuses a PDF it cannot parse', async () => {
    await assert.rejects(extractText(bytes('%PDF-1.7\nthis is not really a pdf'), 'pdf'), unsupported(/^the PDF cannot be read/));
  });

  it('reads a PDF in a separate process without the APIs Node added after 20.3', async () => {
    // Node 20.16 added process.getBuiltinModule; pdf.js uses it only to read files and URLs, never bytes.
    const script = `
      delete process.getBuiltinModule;
      const { PDFDocument, StandardFonts } = require('pdf-lib');
      const { extractText } = require(${JSON.stringify(path.join(ROOT, 'src/documents/extract.ts'))});
      (async () => {
        const doc = await PDFDocument.create();
        const font = await doc.embedFont(StandardFonts.Helvetica);
        doc.addPage().drawText('Worker process text.', { x: 50, y: 700, size: 12, font });
        process.stdout.write(await extractText(await doc.save(), 'pdf'));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT });
    assert.equal(stdout, 'Worker process text.');
  });

  it('reads HTML without scripts, styles, navigation, images or link targets', async () => {
    const html = `<!doctype html><html><head><title>Not body</title><style>p { color: red }</style>
      <script>window.secret = "script text";</script></head><body>
      <nav><a href="/">Home</a> <a href="/about">About us</a></nav>
      <h1>Quarterly report</h1>
      <p>Sales rose by 5% &amp; costs fell. See <a href="https://example.com/x">the appendix</a>.</p>
      <script>console.log("inline script")</script><noscript>Enable JavaScript</noscript>
      <ul><li>First point</li><li>Second point</li></ul>
      <img src="chart.png" alt="chart"><p>Closing words.</p></body></html>`;
    const text = await extractText(bytes(html), 'html');
    for (const wanted of [
      'Quarterly report',
      'Sales rose by 5% & costs fell. See the appendix.',
      'First point',
      'Second point',
      'Closing words.',
    ]) {
      assert.ok(text.includes(wanted), `has "${wanted}":\n${text}`);
    }
    for (const unwanted of [
      'script text',
      'inline script',
      'color: red',
      'Home',
      'About us',
      'Not body',
      'Enable JavaScript',
      'example.com',
      'chart',
    ]) {
      assert.ok(!text.includes(unwanted), `no "${unwanted}":\n${text}`);
    }
    assert.ok(text.indexOf('Quarterly report') < text.indexOf('Closing words.'));
  });

  it('keeps Markdown and text as they are, with \\n newlines and no BOM', async () => {
    const markdown = '\uFEFF# Title\r\n\r\nSome *emphasis* and a [link](https://example.com).\r\n- item\rlast';
    assert.equal(
      await extractText(bytes(markdown), 'markdown'),
      '# Title\n\nSome *emphasis* and a [link](https://example.com).\n- item\nlast',
    );
    assert.equal(await extractText(bytes('\uFEFFplain\r\ntext'), 'text'), 'plain\ntext');
  });
});
