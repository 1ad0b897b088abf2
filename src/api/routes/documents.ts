/**
 * /v1/documents: upload a document, read what is known of it, delete it. An upload is streamed into
 * the blob store as it arrives — hashed on the way, never held whole — so this router is mounted
 * before the JSON body parser, which must not read it.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { BlobTooLargeError } from '../../blobs/store';
import { detectDocumentType, SNIFF_BYTES, UnsupportedDocumentError } from '../../documents/detect';
import { DOCUMENT_ID } from '../../jobs/spec';
import { tenantOf } from '../auth';
import { NO_QUERY, queryOf } from '../body';
import type { DocumentLibrary } from '../documents';
import { Problem } from '../problems';
import { declaredSize, readHead, readingUpload, withHead } from '../uploads';

/** A file name as given at upload: shown back, never used as a path. */
const filename = z
  .string()
  .min(1)
  .max(255)
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point of this pattern
  .regex(/^[^\x00-\x1f\x7f/\\]+$/, 'a file name without path separators or control characters');
export const uploadQuerySchema = z.strictObject({ filename: filename.optional().describe('The file name, if not in Content-Disposition') });

/**
 * The Content-Types an upload may declare (any other text/* reads as plain text). With octet-stream or
 * none, the type is told from the bytes and the file name; the bytes must agree with a declared type.
 */
export const DOCUMENT_CONTENT_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/pdf', 'application/octet-stream'];

export function documentsRouter(library: DocumentLibrary, maxBytes: number) {
  const router = Router();
  const notFound = (id: string) => new Problem('not-found', `No document ${id}`);

  router.post('/', async (req, res) => {
    const name = filenameOf(req);
    // Refused before a byte is read: Node reads and drops an unread body once the answer is sent.
    const encoding = req.get('content-encoding');
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      throw new UnsupportedDocumentError('Send the document as it is, without a Content-Encoding');
    }
    if (declaredSize(req) > maxBytes) throw new BlobTooLargeError(maxBytes);

    const { document, created } = await readingUpload(req, async (body) => {
      const head = await readHead(body, SNIFF_BYTES);
      if (head.length === 0) throw new Problem('empty-document', 'The request body is empty: send the document as the body');
      const type = detectDocumentType(head, { contentType: req.get('content-type'), filename: name ?? undefined });
      return library.add(tenantOf(req), withHead(head, body), { type, filename: name, maxBytes });
    });
    res
      .status(created ? 201 : 200)
      .location(document.links.self)
      .json(document);
  });

  router.get('/:id', async (req, res) => {
    queryOf(req, NO_QUERY);
    const document = DOCUMENT_ID.test(req.params.id) ? await library.get(tenantOf(req), req.params.id) : null;
    if (!document) throw notFound(req.params.id);
    res.json(document);
  });

  router.delete('/:id', async (req, res) => {
    queryOf(req, NO_QUERY);
    const deleted = DOCUMENT_ID.test(req.params.id) && (await library.delete(tenantOf(req), req.params.id));
    if (!deleted) throw notFound(req.params.id);
    res.status(204).end();
  });

  return router;
}

/** The upload's file name: `?filename=`, else Content-Disposition's `filename*` or `filename`; null if neither. */
function filenameOf(req: Request): string | null {
  const fromQuery = queryOf(req, uploadQuerySchema).filename;
  if (fromQuery !== undefined) return fromQuery;
  const disposition = req.get('content-disposition');
  if (disposition === undefined) return null;
  const extended = /filename\*\s*=\s*UTF-8''([^;\s]+)/i.exec(disposition)?.[1];
  const plain = /filename\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(disposition);
  let raw: string | undefined;
  try {
    raw = extended !== undefined ? decodeURIComponent(extended) : (plain?.[1] ?? plain?.[2]);
  } catch {
    raw = undefined; // a broken %-escape: reported below like any other bad name
  }
  if (raw === undefined && !/filename/i.test(disposition)) return null;
  const parsed = filename.safeParse(raw);
  if (!parsed.success) {
    const message = `Content-Disposition: the filename must be ${parsed.error.issues[0]?.message ?? 'a file name'}`;
    throw new Problem('invalid-request', message, { errors: [{ path: 'headers.content-disposition', message }] });
  }
  return parsed.data;
}
