import type { Config } from '../config';
import { FileBlobStore } from './file-store';
import { S3BlobStore } from './s3-store';
import type { BlobStore } from './store';

export { BlobNotFoundError, BlobTooLargeError, documentScope, jobScope, type BlobRef, type BlobStore } from './store';
export { InvalidBlobKeyError } from './keys';

/** The store the configuration names: a directory (`SWITCHYARD_BLOB_STORE=file`, the default) or an S3-compatible bucket. */
export function createBlobStore(settings: Config['blobs']): BlobStore {
  return settings.kind === 's3' ? new S3BlobStore(settings) : new FileBlobStore(settings.dir, settings.keys);
}
