/**
 * Where a document job keeps its blobs inside its job scope. The pipeline activities (workflows task
 * queue) and the chunk activities (pool task queue) meet here: one writes a chunk, the other reads it.
 */

/** The extracted text. */
export const textKey = (scope: string): string => `${scope}/text`;
/** The chunk manifest: [{ index, sha256, chars }]. */
export const manifestKey = (scope: string): string => `${scope}/chunks.json`;
export const chunksScope = (scope: string): string => `${scope}/chunks`;
export const chunkKey = (scope: string, index: number): string => `${chunksScope(scope)}/${index}`;
export const resultsScope = (scope: string): string => `${scope}/results`;
/** One chunk's analysis (a ChunkResult as JSON). */
export const chunkResultKey = (scope: string, index: number): string => `${resultsScope(scope)}/${index}.json`;
/** The chunk summaries one after another, which the document summary is made from. */
export const summariesKey = (scope: string): string => `${scope}/summaries.txt`;
/** The document summary: { summary, model }. */
export const summaryKey = (scope: string): string => `${scope}/summary.json`;
/** A fetched document (stored content-addressed under this scope). */
export const sourceScope = (scope: string): string => `${scope}/source`;

/** What stays once the job is published: the result and the embeddings. */
export const resultKey = (scope: string): string => `${scope}/result.json`;
export const embeddingsKey = (scope: string): string => `${scope}/embeddings.ndjson`;
