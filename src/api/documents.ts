/**
 * A tenant's uploaded documents in the blob store: the bytes content-addressed in the tenant's document
 * scope, and beside them a small JSON record per document (its type, size, hash, name). The id is
 * derived from the hash, so the same bytes uploaded again are the same document.
 */
import { z } from 'zod';
import { BlobNotFoundError, documentScope, type BlobStore } from '../blobs/store';
import { DOCUMENT_TYPES, type DocumentSource, type DocumentType } from '../documents/contract';

export const documentResourceSchema = z.object({
  id: z.string().describe('doc- and the first 32 hex digits of the SHA-256: the same bytes are the same document'),
  type: z.enum(DOCUMENT_TYPES),
  size: z.number().int().describe('Bytes'),
  sha256: z.string(),
  filename: z.string().nullable().describe('From Content-Disposition or ?filename= at upload'),
  createdAt: z.iso.datetime().describe('When these bytes were first uploaded'),
  links: z.object({ self: z.string() }),
});
type DocumentResource = z.infer<typeof documentResourceSchema>;

/** The record kept beside a document's bytes. */
const recordSchema = z.object({
  id: z.string(),
  type: z.enum(DOCUMENT_TYPES),
  blob: z.object({ key: z.string(), sha256: z.string(), size: z.number() }),
  filename: z.string().nullable(),
  createdAt: z.string(),
});
type DocumentRecord = z.infer<typeof recordSchema>;

const documentIdOf = (sha256: string) => `doc-${sha256.slice(0, 32)}`;

export class DocumentLibrary {
  constructor(private readonly blobs: BlobStore) {}

  /**
   * Stores `body` as one of the tenant's documents (BlobTooLargeError past `maxBytes`, nothing kept).
   * `created` is false when the tenant had uploaded these bytes before: that document is returned as it was.
   */
  async add(
    tenant: string,
    body: AsyncIterable<Uint8Array>,
    about: { type: DocumentType; filename: string | null; maxBytes: number },
  ): Promise<{ document: DocumentResource; created: boolean }> {
    const blob = await this.blobs.putContent(documentScope(tenant), body, { maxBytes: about.maxBytes });
    const id = documentIdOf(blob.sha256);
    const existing = await this.record(tenant, id);
    if (existing) return { document: resourceOf(existing), created: false };
    const record: DocumentRecord = { id, type: about.type, blob, filename: about.filename, createdAt: new Date().toISOString() };
    await this.blobs.putAt(recordKey(tenant, id), JSON.stringify(record));
    return { document: resourceOf(record), created: true };
  }

  async get(tenant: string, id: string): Promise<DocumentResource | null> {
    const record = await this.record(tenant, id);
    return record && resourceOf(record);
  }

  /** A document job's source: the document's blob and type, for the workflow to read. */
  async source(tenant: string, id: string): Promise<DocumentSource | null> {
    const record = await this.record(tenant, id);
    return record && { document: { id, blob: record.blob, type: record.type } };
  }

  /** Deletes the document, its bytes and its record; false if the tenant has no such document. */
  async delete(tenant: string, id: string): Promise<boolean> {
    const record = await this.record(tenant, id);
    if (!record) return false;
    // The bytes first: while the record is there, a delete that failed halfway can be repeated.
    await this.blobs.delete(record.blob.key);
    await this.blobs.delete(recordKey(tenant, id));
    return true;
  }

  private async record(tenant: string, id: string): Promise<DocumentRecord | null> {
    try {
      return recordSchema.parse(JSON.parse((await this.blobs.get(recordKey(tenant, id))).toString('utf8')));
    } catch (err) {
      if (err instanceof BlobNotFoundError) return null;
      throw err;
    }
  }
}

/** Records are found by id (the API has only the id), so they are named by it, not by the full hash. */
const recordKey = (tenant: string, id: string) => `${documentScope(tenant)}/${id}.json`;

function resourceOf(r: DocumentRecord): DocumentResource {
  return {
    id: r.id,
    type: r.type,
    size: r.blob.size,
    sha256: r.blob.sha256,
    filename: r.filename,
    createdAt: r.createdAt,
    links: { self: `/v1/documents/${r.id}` },
  };
}
