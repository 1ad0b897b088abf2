/**
 * Documents end to end on the real dev server, real worker processes and a real API process: uploads
 * (streamed, content-addressed, tenant-scoped, limited), document jobs over text, PDF and HTML on the
 * local pool, their progress and result, retrying a failed one, and deleting jobs and documents.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { documentScope, jobScope } from '../../src/blobs/store';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const MAX_DOCUMENT_BYTES = 64 * 1024;

let stack: Stack;

before(async () => {
  stack = await new Stack({
    pools: { local: { provider: 'local', concurrency: 8 } },
    env: { SWITCHYARD_MAX_DOCUMENT_BYTES: String(MAX_DOCUMENT_BYTES) },
  }).start();
});
after(() => stack?.stop());

const sha256 = (bytes: string | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Text of `paragraphs` paragraphs, each a few sentences naming its own topic word, so chunks differ. */
function report(paragraphs: number, marker = ''): string {
  const topics = ['harbour', 'glacier', 'orchard', 'lantern', 'meadow', 'compass', 'violin', 'quarry', 'tundra', 'saffron'];
  return Array.from({ length: paragraphs }, (_, i) => {
    const topic = topics[i % topics.length];
    return (
      `Section ${i + 1} ${marker}describes the ${topic}. The ${topic} team met on Monday and was pleased with the results. ` +
      `Everyone agreed the ${topic} project is going well and deserves more funding.`
    );
  }).join('\n\n');
}

async function uploaded(bytes: string | Uint8Array, contentType: string | null, opts: Parameters<Stack['upload']>[2] = {}): Promise<any> {
  const answer = await stack.upload(bytes, contentType, opts);
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}

async function submitDocumentJob(fields: Record<string, unknown>): Promise<string> {
  const answer = await stack.call('POST', '/v1/jobs', { body: { type: 'document', ...fields } });
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  return answer.body.id;
}

describe('uploads', () => {
  test('a text upload is stored under an id from its hash; the same bytes again are the same document (200)', async () => {
    const text = report(3, `upload-${Date.now()} `);
    const first = await stack.upload(text, 'text/plain', { headers: { 'content-disposition': 'attachment; filename="q3 report.txt"' } });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const hash = sha256(text);
    assert.deepEqual(first.body, {
      id: `doc-${hash.slice(0, 32)}`,
      type: 'text',
      size: Buffer.byteLength(text),
      sha256: hash,
      filename: 'q3 report.txt',
      createdAt: first.body.createdAt,
      links: { self: `/v1/documents/doc-${hash.slice(0, 32)}` },
    });
    assert.equal(first.headers.get('location'), first.body.links.self);

    const again = await stack.upload(text, 'text/plain', { query: '?filename=other.txt' });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body, 'the document as first uploaded');
    assert.deepEqual((await stack.call('GET', first.body.links.self)).body, first.body);

    // Another tenant's view: nothing, and nothing to delete.
    assert.equal((await stack.call('GET', first.body.links.self, { as: 'globex' })).status, 404);
    assert.equal((await stack.call('DELETE', first.body.links.self, { as: 'globex' })).status, 404);

    const scope = documentScope(stack.tenant('acme'));
    assert.ok((await stack.blobs().list(scope)).includes(`${scope}/${hash}`));
    assert.equal((await stack.call('DELETE', first.body.links.self)).status, 204);
    assert.equal((await stack.call('GET', first.body.links.self)).status, 404);
    assert.equal((await stack.call('DELETE', first.body.links.self)).status, 404);
    const left = await stack.blobs().list(scope);
    assert.ok(!left.some((k) => k.includes(hash) || k.includes(first.body.id)), `left behind: ${left.join(', ')}`);
  });

  test('the type comes from the bytes, the Content-Type and the file name', async () => {
    const cases: [string | Uint8Array, string | null, Parameters<Stack['upload']>[2], string][] = [
      ['# Title\n\nSome *markdown* text.', 'text/markdown', {}, 'markdown'],
      ['<!doctype html><html><body><p>Hello there.</p></body></html>', 'text/html; charset=utf-8', {}, 'html'],
      ['<!doctype html><html><body><p>No type given.</p></body></html>', null, {}, 'html'],
      ['Plain words, sent as octets.', 'application/octet-stream', { query: '?filename=notes.txt' }, 'text'],
      [await pdfOf(['One page.']), 'application/pdf', {}, 'pdf'],
    ];
    for (const [bytes, contentType, opts, type] of cases) {
      const answer = await stack.upload(bytes, contentType, opts);
      assert.ok([200, 201].includes(answer.status), JSON.stringify(answer.body));
      assert.equal(answer.body.type, type, `${contentType}: ${JSON.stringify(answer.body)}`);
    }
  });

  test(`an upload over ${MAX_DOCUMENT_BYTES} bytes is 413 and leaves nothing stored, with or without Content-Length`, async () => {
    const scope = documentScope(stack.tenant('globex'));
    const before = await stack.blobs().list(scope);
    const big = 'All work and no play. '.repeat(Math.ceil((MAX_DOCUMENT_BYTES * 2) / 22));
    const declared = await stack.upload(big, 'text/plain', { as: 'globex' });
    assert.equal(declared.status, 413, JSON.stringify(declared.body));
    assert.equal(declared.body.code, 'payload-too-large');
    assert.equal(declared.body.maxBytes, MAX_DOCUMENT_BYTES);

    // Streamed in pieces with no Content-Length: the limit stops it as the bytes arrive.
    const piece = Buffer.from('Streamed text goes on and on. '.repeat(1000));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_DOCUMENT_BYTES * 4) return controller.close();
        sent += piece.length;
        controller.enqueue(piece);
      },
    });
    const streamed = await fetch(`${stack.apiUrl}/v1/documents`, {
      method: 'POST',
      headers: { authorization: 'Bearer globex-key-0123456789abcdef', 'content-type': 'text/plain' },
      body,
      duplex: 'half',
    });
    assert.equal(streamed.status, 413);
    assert.equal(((await streamed.json()) as { code: string }).code, 'payload-too-large');
    assert.deepEqual(await stack.blobs().list(scope), before);
  });

  test('an unsupported type is 415 listing what is accepted; an empty body is 400', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const refused = await stack.upload(png, 'image/png');
    assert.equal(refused.status, 415, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'unsupported-document-type');
    assert.deepEqual(refused.body.accepted.types, ['text', 'markdown', 'html', 'pdf']);
    const empty = await stack.upload('', 'text/plain');
    assert.equal(empty.status, 400);
    assert.equal(empty.body.code, 'empty-document');
  });
});

describe('document jobs', () => {
  /** Set by the delete test, first: Temporal removes a history in the background, so it is looked for last. */
  let deleted: { id: string; runId: string } | undefined;

  test('DELETE: 409 while the job runs; once it ended, 204, and its data is gone at once', async () => {
    const doc = await uploaded(report(20, `delete-${Date.now()} `), 'text/plain');
    const id = await submitDocumentJob({
      source: { documentId: doc.id },
      tasks: ['summarize', 'embed'],
      chunking: { targetChars: 200 },
      maxParallel: 1,
    });
    const early = await stack.call('DELETE', `/v1/jobs/${id}`);
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.equal(early.body.code, 'job-not-deletable');

    const job = await stack.waitForJob(id, ['succeeded']);
    const scope = jobScope(stack.tenant('acme'), id);
    assert.ok((await stack.blobs().list(scope)).length > 0);
    assert.equal((await stack.call('DELETE', `/v1/jobs/${id}`, { as: 'globex' })).status, 404, 'not another tenant’s to delete');
    assert.equal((await stack.call('DELETE', `/v1/jobs/${id}`)).status, 204);
    assert.deepEqual(await stack.blobs().list(scope), []);
    // The document itself is the tenant's, not the job's: it stays.
    assert.equal((await stack.call('GET', `/v1/documents/${doc.id}`)).status, 200);
    deleted = { id, runId: job.run.id };
  });

  test('a multi-page text document: every chunk analysed, the results rolled up, only the result left', async () => {
    const doc = await uploaded(report(12), 'text/plain');
    const id = await submitDocumentJob({
      source: { documentId: doc.id },
      tasks: ['summarize', 'entities', 'keywords', 'sentiment', 'embed'],
      chunking: { targetChars: 300 },
      maxParallel: 4,
    });
    const seen = new Set<string>();
    let job: any;
    await eventually('the job to end', async () => {
      job = (await stack.call('GET', `/v1/jobs/${id}`)).body;
      if (job.progress) seen.add(job.progress.stage);
      return job.finishedAt ? job : undefined;
    });
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    assert.equal(job.type, 'document');
    assert.equal(job.task, 'summarize,entities,keywords,sentiment,embed');
    const total = job.result.chunksTotal;
    assert.ok(total >= 4, `only ${total} chunks`);
    assert.equal(job.result.chunksDone, total);
    assert.deepEqual(job.result.failedChunks, []);
    assert.equal(job.result.webhook, null);
    assert.deepEqual(job.progress, {
      stage: 'done',
      chunksTotal: total,
      chunksDone: total,
      chunksFailed: 0,
      failedChunks: [],
      review: null,
    });
    assert.deepEqual(job.links.result, `/v1/jobs/${id}/result`);
    assert.ok(seen.size > 0, 'progress was shown while the job ran');

    const answer = await stack.call('GET', job.links.result);
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    const result = answer.body;
    assert.deepEqual(result.chunks, { total, analysed: total, failed: 0, failedIndexes: [] });
    assert.ok(
      result.keywords.top.some((k: any) => k.term === 'glacier'),
      JSON.stringify(result.keywords.top.slice(0, 20)),
    );
    assert.ok(result.entities.distinct > 0);
    assert.equal(result.sentiment.chunks, total);
    assert.ok(result.sentiment.mean > 0, 'the report is upbeat');
    assert.equal(result.embeddings.count, total);
    assert.ok(result.summary.chunks.length > 0);

    const scope = jobScope(stack.tenant('acme'), id);
    const kept = (await stack.blobs().list(scope)).map((k) => k.slice(scope.length + 1)).sort();
    assert.deepEqual(kept, ['embeddings.ndjson', 'result.json']);
    const raw = await stack.blobs().get(`${scope}/result.json`);
    assert.equal(sha256(raw), job.result.sha256);
    assert.equal(raw.length, job.result.size);
  });

  test('a three-page PDF: its text from every page is analysed', async () => {
    const pdf = await pdfOf([
      'The first page talks about the lighthouse keeper.',
      'The second page is about the observatory.',
      'The third page describes the aqueduct and its engineers.',
    ]);
    const doc = await uploaded(pdf, 'application/pdf', { query: '?filename=pages.pdf' });
    assert.equal(doc.type, 'pdf');
    const id = await submitDocumentJob({ source: { documentId: doc.id }, tasks: ['keywords'] });
    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    const terms = (await stack.call('GET', job.links.result)).body.keywords.top.map((k: any) => k.term);
    for (const term of ['lighthouse', 'observatory', 'aqueduct']) assert.ok(terms.includes(term), `${term} not in ${terms.join(', ')}`);
  });

  test('an HTML page: the visible text is analysed, scripts and styles are not', async () => {
    const html = `<!doctype html><html><head><title>Field notes</title><style>.x { color: zebracolour; }</style>
      <script>var secretvariable = "javascriptonly";</script></head>
      <body><h1>Field notes</h1><p>The expedition reached the volcano at dawn.</p><p>The crew mapped the caldera.</p></body></html>`;
    const doc = await uploaded(html, 'text/html');
    const id = await submitDocumentJob({ source: { documentId: doc.id }, tasks: ['keywords'] });
    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    const terms: string[] = (await stack.call('GET', job.links.result)).body.keywords.top.map((k: any) => k.term);
    assert.ok(terms.includes('volcano') && terms.includes('caldera'), terms.join(', '));
    assert.ok(!terms.some((t) => /javascriptonly|secretvariable|zebracolour/.test(t)), terms.join(', '));
  });

  test('the result is 409 until there is one; an inference job’s result is its result object', async () => {
    const doc = await uploaded(report(2, `early-${Date.now()} `), 'text/plain');
    const id = await submitDocumentJob({ source: { documentId: doc.id }, tasks: ['sentiment'] });
    const early = await stack.call('GET', `/v1/jobs/${id}/result`);
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.equal(early.body.code, 'result-not-ready');
    await stack.waitForJob(id, ['succeeded']);

    const inference = await stack.call('POST', '/v1/jobs', { body: { type: 'inference', task: 'sentiment', input: { text: 'Lovely.' } } });
    const done = await stack.waitForJob(inference.body.id, ['succeeded']);
    assert.deepEqual((await stack.call('GET', `/v1/jobs/${done.id}/result`)).body, done.result);
    assert.equal(done.progress, null);
    assert.equal(done.links.review, undefined);
  });

  test('an Idempotency-Key makes a repeated document job one job', async () => {
    const doc = await uploaded(report(2, `idempotent-${Date.now()} `), 'text/plain');
    const body = { type: 'document', source: { documentId: doc.id }, tasks: ['sentiment'] };
    const headers = { 'idempotency-key': `doc-job-${Date.now()}` };
    const first = await stack.call('POST', '/v1/jobs', { body, headers });
    const second = await stack.call('POST', '/v1/jobs', { body, headers });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.id, first.body.id);
    const other = await stack.call('POST', '/v1/jobs', { body: { ...body, tasks: ['keywords'] }, headers });
    assert.equal(other.status, 409);
    assert.equal(other.body.code, 'idempotency-conflict');
    await stack.waitForJob(first.body.id, ['succeeded']);
  });

  test('with no workflow worker to ask, a document job is still read at once, without progress', async () => {
    // An API of its own task-queue prefix: no worker polls its queues.
    const alone = new Stack();
    try {
      await alone.startApi();
      const doc = (await alone.upload(report(2), 'text/plain')).body;
      const submitted = await alone.call('POST', '/v1/jobs', {
        body: { type: 'document', source: { documentId: doc.id }, tasks: ['sentiment'] },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      const startedAt = Date.now();
      const job = (await alone.call('GET', `/v1/jobs/${submitted.body.id}`)).body;
      const tookMs = Date.now() - startedAt;
      assert.ok(tookMs < 5000, `took ${tookMs} ms`);
      assert.equal(job.status, 'queued');
      assert.equal(job.progress, null);
      // No worker will ever run it: end it here rather than leave it to its deadline.
      await (await alone.temporal()).workflow.getHandle(`${alone.tenant('acme')}/${job.id}`).terminate('test over');
    } finally {
      await alone.stop();
    }
  });

  test('a failed document job is retried as a new run of the same job, from the start', async () => {
    // Bytes that are text but hold no words: extraction finds nothing and the job fails at once.
    const doc = await uploaded(' \n\t \n'.repeat(8), 'text/plain');
    const id = await submitDocumentJob({ source: { documentId: doc.id }, tasks: ['keywords'] });
    const failed = await stack.waitForJob(id, ['failed', 'succeeded']);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.lastFailure.type, 'EmptyDocument');
    assert.deepEqual(await stack.blobs().list(jobScope(stack.tenant('acme'), id)), [], 'a failed job leaves no data');

    const retried = await stack.call('POST', `/v1/jobs/${id}/retry`);
    assert.equal(retried.status, 202, JSON.stringify(retried.body));
    assert.equal(retried.body.type, 'document');
    assert.equal(retried.body.run.number, 2);
    const again = await stack.waitForJob(id, ['failed', 'succeeded']);
    assert.equal(again.run.number, 2);
    assert.equal(again.lastFailure.type, 'EmptyDocument');
  });

  test('a deleted job’s history is gone, and the job reads as not found', async () => {
    assert.ok(deleted, 'the delete test ran');
    const { id, runId } = deleted;
    const handle = (await stack.temporal()).workflow.getHandle(`${stack.tenant('acme')}/${id}`, runId);
    await eventually('the history to be gone', async () => ((await handle.fetchHistory().catch(() => null)) === null ? true : undefined));
    assert.equal((await stack.call('GET', `/v1/jobs/${id}`)).status, 404);
    assert.equal((await stack.call('DELETE', `/v1/jobs/${id}`)).status, 404);
  });
});

/** A PDF with one page per string, made with pdf-lib. */
async function pdfOf(pages: string[]): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const text of pages) pdf.addPage([400, 300]).drawText(text, { x: 20, y: 250, size: 11, font });
  return pdf.save();
}
