/**
 * Plain text from a document. PDF through unpdf: Mozilla's pdf.js built to run without a browser or a
 * canvas, with no dependencies, a CommonJS entry and polyfills for what Node 20 lacks, so it runs in
 * the worker process as it is. HTML through html-to-text, without scripts, styles, navigation and
 * images. Markdown and text as they are. Newlines are \n, and a UTF-8 BOM is dropped.
 */
import type { PDFDocumentProxy } from 'unpdf/pdfjs';
import { convert as htmlToText, type HtmlToTextOptions } from 'html-to-text';
import type { DocumentType } from './contract';
import { UnsupportedDocumentError } from './detect';

const HTML_OPTIONS: HtmlToTextOptions = {
  wordwrap: false,
  selectors: [
    ...['nav', 'noscript', 'template', 'svg', 'img'].map((selector) => ({ selector, format: 'skip' })),
    { selector: 'a', options: { ignoreHref: true } },
    { selector: 'table', format: 'dataTable' },
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
  ],
};

/** UTF-8, BOM dropped (TextDecoder's default), invalid bytes as U+FFFD. */
const decode = (bytes: Uint8Array) => new TextDecoder('utf-8').decode(bytes);
const normalizeNewlines = (text: string) => text.replace(/\r\n?/g, '\n');

/** Pages in order, separated by a blank line, so a page break is a paragraph break for the splitter. */
async function pdfText(bytes: Uint8Array): Promise<string> {
  // Loaded on first use: pdf.js is large, and most processes (pool workers, the API) never read a PDF.
  const { extractText: extractPdfPages, getDocumentProxy } = await import('unpdf');
  let pdf: PDFDocumentProxy;
  try {
    // A copy: pdf.js may take over the buffer it is given.
    pdf = await getDocumentProxy(new Uint8Array(bytes));
  } catch (err) {
    throw new UnsupportedDocumentError(`the PDF cannot be read: ${(err as Error).message}`);
  }
  try {
    const { text } = await extractPdfPages(pdf, { mergePages: false });
    return text
      .map((page) => page.trim())
      .filter(Boolean)
      .join('\n\n');
  } finally {
    await pdf.destroy();
  }
}

export async function extractText(bytes: Uint8Array, type: DocumentType): Promise<string> {
  switch (type) {
    case 'pdf':
      return normalizeNewlines(await pdfText(bytes));
    case 'html':
      return htmlToText(normalizeNewlines(decode(bytes)), HTML_OPTIONS);
    case 'markdown':
    case 'text':
      return normalizeNewlines(decode(bytes));
  }
}
