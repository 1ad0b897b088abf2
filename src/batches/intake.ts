/**
 * A batch file's way in: stored as uploaded, then read back line by line and validated whole before
 * anything runs; the valid items are split into group files of `groupSize` as they come. A file with any
 * error is refused whole with its first errors, and nothing of it is kept. Memory stays bounded by one
 * group and the custom_ids seen, whatever the file's size.
 */
import type { z } from 'zod';
import { BlobTooLargeError, type BlobRef, type BlobStore } from '../blobs/store';
import type { InferenceTask } from '../inference/provider';
import { type BatchFormat, type BatchItem, groupItemsKey } from './contract';
import { BatchFileRejectedError, type BatchLineError } from './errors';
import { linesOf } from './jsonl';
import { batchLineSchema, type BatchLineItem, formatOf } from './lines';

export interface IntakeOptions {
  /** The tasks the pool's provider does: a line asking for another is an error. */
  tasks: readonly InferenceTask[];
  maxLines: number;
  maxBytes: number;
  groupSize: number;
  /** Errors listed in the refusal; all of them are counted. */
  maxErrors?: number;
}

export interface IntakeResult {
  format: BatchFormat;
  items: number;
  groups: number;
  bytes: number;
  input: BlobRef;
}

const DEFAULT_MAX_ERRORS = 20;
/** Zod issues told per line: the first few say what is wrong, all of them would only repeat it. */
const ISSUES_PER_LINE = 3;
const FORMAT_NAMES: Record<BatchFormat, string> = { switchyard: 'Switchyard', openai: 'OpenAI batch' };

/**
 * Stores `body` in `scope` (content-addressed, over `maxBytes` refused) and splits its lines into group
 * files; BatchFileRejectedError, with the scope deleted, for a file with any error.
 */
export async function intakeBatch(
  blobs: BlobStore,
  scope: string,
  body: AsyncIterable<Uint8Array>,
  opts: IntakeOptions,
): Promise<IntakeResult> {
  try {
    const input = await blobs.putContent(scope, body, { maxBytes: opts.maxBytes }).catch((err: unknown) => {
      throw err instanceof BlobTooLargeError ? BatchFileRejectedError.tooLarge(opts.maxBytes) : err;
    });
    const { format, items, groups } = await splitIntoGroups(blobs, scope, input, opts);
    return { format, items, groups, bytes: input.size, input };
  } catch (err) {
    await blobs.deleteScope(scope);
    throw err;
  }
}

async function splitIntoGroups(blobs: BlobStore, scope: string, input: BlobRef, opts: IntakeOptions) {
  const found = new ErrorList(opts.maxErrors ?? DEFAULT_MAX_ERRORS);
  const firstLineOf = new Map<string, number>();
  let file: { format: BatchFormat; line: number; schema: z.ZodType<BatchLineItem> } | undefined;
  let lineNo = 0;
  let items = 0;
  let group: string[] = [];
  let groups = 0;
  const flush = async () => {
    await blobs.putAt(groupItemsKey(scope, groups++), group.join(''));
    group = [];
  };

  for await (const text of linesOf(await blobs.stream(input.key))) {
    lineNo++;
    if (text.trim() === '') continue;
    // Past the limit the file is refused, and its lines are still checked, so the refusal lists all that is wrong.
    if (++items === opts.maxLines + 1) {
      found.add(lineNo, `the file has more than ${opts.maxLines} lines (SWITCHYARD_BATCH_MAX_LINES); split it into several batches`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      found.add(lineNo, `not valid JSON: ${(err as Error).message}`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      found.add(lineNo, 'a line is one JSON object');
      continue;
    }
    const format = formatOf(value);
    file ??= { format, line: lineNo, schema: batchLineSchema(format, opts.tasks) };
    if (format !== file.format) {
      found.add(
        lineNo,
        `a line in ${FORMAT_NAMES[format]} format, but line ${file.line} is in ${FORMAT_NAMES[file.format]} format; one format per file`,
      );
      continue;
    }
    const parsed = file.schema.safeParse(value);
    if (!parsed.success) {
      found.add(lineNo, issuesText(parsed.error));
      continue;
    }
    const first = firstLineOf.get(parsed.data.customId);
    if (first !== undefined) {
      found.add(lineNo, `custom_id ${JSON.stringify(parsed.data.customId)} is already used on line ${first}`);
      continue;
    }
    firstLineOf.set(parsed.data.customId, lineNo);
    // A file already refused is not written on: its groups would only be deleted.
    if (found.count > 0) continue;
    group.push(`${JSON.stringify({ line: lineNo, ...parsed.data } satisfies BatchItem)}\n`);
    if (group.length === opts.groupSize) await flush();
  }

  if (!file && found.count === 0) found.add(undefined, 'the file has no lines; send one JSON request per line');
  if (found.count > 0) throw new BatchFileRejectedError(found.errors, found.count, lineNo);
  if (group.length > 0) await flush();
  return { format: file!.format, items, groups };
}

/** Every error counted, the first `max` kept. */
class ErrorList {
  readonly errors: BatchLineError[] = [];
  count = 0;
  constructor(private readonly max: number) {}

  add(line: number | undefined, message: string): void {
    this.count++;
    if (this.errors.length < this.max) this.errors.push(line === undefined ? { message } : { line, message });
  }
}

function issuesText(error: z.ZodError): string {
  const told = error.issues.slice(0, ISSUES_PER_LINE).map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  const more = error.issues.length - told.length;
  return told.join('; ') + (more > 0 ? `; and ${more} more` : '');
}
