/**
 * What kind of document some bytes are, from their first bytes, the declared content type and the file
 * name. A declared type is believed only as far as the bytes agree: a PDF must start like one, and
 * everything else must be text (valid UTF-8 without NUL bytes); images, archives and other binaries are
 * refused, which the API answers with 415.
 */
import { SwitchyardError } from '../errors';
import type { DocumentType } from './contract';

/** How many leading bytes detection looks at. */
export const SNIFF_BYTES = 4096;

/** The document cannot be turned into text: not a supported type, or unreadable as the type it claims. */
export class UnsupportedDocumentError extends SwitchyardError {
  override readonly name = 'UnsupportedDocumentError';
  readonly code = 'unsupported-document';
  constructor(readonly reason: string) {
    super(reason);
  }
}

export interface DeclaredDocument {
  /** The Content-Type header, parameters and all (`text/html; charset=utf-8`). */
  contentType?: string;
  filename?: string;
}

/** Declared types that name one of ours; octet-stream (or none) says nothing, and any other type is refused. */
const DECLARED: Record<string, DocumentType> = {
  'application/pdf': 'pdf',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  'text/markdown': 'markdown',
  'text/x-markdown': 'markdown',
};
const EXTENSIONS: Record<string, DocumentType> = {
  pdf: 'pdf',
  html: 'html',
  htm: 'html',
  md: 'markdown',
  markdown: 'markdown',
  txt: 'text',
};

const PDF_MAGIC = Buffer.from('%PDF-');
const HTML_START = /^\s*(<!--[\s\S]*?-->\s*)*<(!doctype\s+html|html)[\s>]/i;

function isText(head: Uint8Array): boolean {
  if (head.includes(0)) return false;
  try {
    // stream: a multi-byte character cut off at the end of the head is not an error.
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** The document type of bytes starting with `head` (up to SNIFF_BYTES of them); UnsupportedDocumentError if none fits. */
export function detectDocumentType(head: Uint8Array, declared: DeclaredDocument = {}): DocumentType {
  const mediaType = declared.contentType?.split(';')[0]!.trim().toLowerCase() || undefined;
  const extension = declared.filename?.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  const claimed =
    mediaType && mediaType !== 'application/octet-stream'
      ? (DECLARED[mediaType] ?? (mediaType.startsWith('text/') ? 'text' : undefined))
      : undefined;
  if (mediaType && mediaType !== 'application/octet-stream' && !claimed) {
    throw new UnsupportedDocumentError(`${mediaType} is not a supported document type: send PDF, HTML, Markdown or plain text`);
  }
  // Some PDF writers put a few bytes before the header; readers accept it within the first 1024.
  if (Buffer.from(head.subarray(0, 1024)).includes(PDF_MAGIC)) return 'pdf';
  if (claimed === 'pdf') throw new UnsupportedDocumentError('declared as a PDF, but the content does not start like one');
  if (!isText(head)) throw new UnsupportedDocumentError('the content is binary: send PDF, HTML, Markdown or plain text (UTF-8)');
  if (claimed === 'html' || claimed === 'markdown') return claimed;
  const text = new TextDecoder().decode(head.subarray(0, 1024));
  if (HTML_START.test(text)) return 'html';
  const byName = extension ? EXTENSIONS[extension] : undefined;
  return byName === 'html' || byName === 'markdown' ? byName : 'text';
}
