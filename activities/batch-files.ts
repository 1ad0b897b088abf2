/** A batch group's files as its activities read and write them: its items, its result parts and its manifest. */
import { ApplicationFailure } from '@temporalio/activity';
import { BlobNotFoundError, type BlobStore } from '../src/blobs/store';
import { readGroupProgress } from '../src/batches/progress';
import {
  BATCH_FAILURES,
  groupItemsKey,
  groupManifestKey,
  groupPartKey,
  type BatchItem,
  type BatchItemResult,
  type GroupProgress,
} from '../src/batches/contract';

const NOTHING_DONE: GroupProgress = { done: 0, completed: 0, failed: 0, parts: [] };

/** The group's items in input order; BatchDataMissing (final) when its file is gone. */
export async function readGroupItems(blobs: BlobStore, scope: string, index: number): Promise<BatchItem[]> {
  let text: string;
  try {
    text = (await blobs.get(groupItemsKey(scope, index))).toString('utf8');
  } catch (err) {
    if (err instanceof BlobNotFoundError) {
      throw ApplicationFailure.nonRetryable(`the items of group ${index} are gone from ${scope}`, BATCH_FAILURES.dataMissing);
    }
    throw err;
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as BatchItem);
}

/** What the group has made durable; nothing for a group that has not written a part yet. */
export async function readProgress(blobs: BlobStore, scope: string, index: number): Promise<GroupProgress> {
  return (await readGroupProgress(blobs, scope, index)) ?? NOTHING_DONE;
}

/**
 * Writes `results` (the items right after `progress.done`, in order) as `writer`'s part, then the manifest
 * that counts it, and returns the new progress. An attempt the server gave up on may still be flushing
 * while the next one runs: parts are the writer's own, and a manifest is not replaced by one that got less
 * far, so the manifest always lists one writer's consistent parts and never goes back.
 */
export async function appendPart(
  blobs: BlobStore,
  scope: string,
  index: number,
  progress: GroupProgress,
  results: BatchItemResult[],
  writer: string,
): Promise<GroupProgress> {
  const key = groupPartKey(scope, index, progress.done, writer);
  await blobs.putAt(key, results.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const completed = results.filter((r) => r.ok).length;
  const next: GroupProgress = {
    done: progress.done + results.length,
    completed: progress.completed + completed,
    failed: progress.failed + results.length - completed,
    parts: [...progress.parts, key],
  };
  if ((await readProgress(blobs, scope, index)).done <= next.done) await blobs.putAt(groupManifestKey(scope, index), JSON.stringify(next));
  return next;
}
