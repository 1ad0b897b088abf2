/** A group's manifest, as both its activities and the output files read it. */
import { BlobNotFoundError, type BlobStore } from '../blobs/store';
import { groupManifestKey, type GroupProgress } from './contract';

/** What group `index` has made durable; undefined before it has written its first part. */
export async function readGroupProgress(blobs: BlobStore, scope: string, index: number): Promise<GroupProgress | undefined> {
  try {
    return JSON.parse((await blobs.get(groupManifestKey(scope, index))).toString('utf8')) as GroupProgress;
  } catch (err) {
    if (err instanceof BlobNotFoundError) return undefined;
    throw err;
  }
}
