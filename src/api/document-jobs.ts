/**
 * What a document job needs checked before it is started, so that a job that cannot work is a 400 now
 * rather than a failed job later: the document exists for this tenant, the URLs it would fetch or call
 * are ones the outbound guard allows, and a webhook can be signed.
 */
import { type Config, webhookSecretOf } from '../config';
import type { DocumentSource } from '../documents/contract';
import type { DocumentJobSpec } from '../jobs/spec';
import { checkUrl, UrlRefusedError } from '../net/outbound';
import type { DocumentLibrary } from './documents';
import { Problem } from './problems';

export interface DocumentJobChecks {
  documents: DocumentLibrary;
  config: Pick<Config, 'outbound' | 'tenants' | 'webhookSecret'>;
}

/** The job's source as the workflow takes it; a Problem if the job cannot be started as asked. */
export async function documentSourceOf(
  tenant: string,
  spec: DocumentJobSpec,
  { documents, config }: DocumentJobChecks,
): Promise<DocumentSource> {
  if (spec.webhook) await checkWebhook(tenant, spec.webhook.url, 'body.webhook.url', config);
  if ('url' in spec.source) {
    await refuseUnsafe(spec.source.url, 'body.source.url', config.outbound);
    return { url: spec.source.url };
  }
  const { documentId } = spec.source;
  const source = await documents.source(tenant, documentId);
  if (!source) {
    const message = `no document ${documentId}: upload it with POST /v1/documents first`;
    throw new Problem('unknown-document', `body.source.documentId: ${message}`, { errors: [{ path: 'body.source.documentId', message }] });
  }
  return source;
}

/** A webhook the tenant asks for, checked: it can be signed, and its URL is one the outbound guard allows. */
export async function checkWebhook(
  tenant: string,
  url: string,
  path: string,
  config: Pick<Config, 'outbound' | 'tenants' | 'webhookSecret'>,
): Promise<void> {
  if (webhookSecretOf(config, tenant) === undefined) {
    throw new Problem(
      'webhook-not-configured',
      `No secret to sign webhooks of tenant ${tenant}: set SWITCHYARD_WEBHOOK_SECRET, or webhookSecret for the tenant in SWITCHYARD_TENANTS`,
    );
  }
  await refuseUnsafe(url, path, config.outbound);
}

/**
 * Checks the URL as the worker will when it connects (the worker checks again: DNS may answer
 * differently by then, and redirects are checked as they come).
 */
async function refuseUnsafe(url: string, path: string, policy: Config['outbound']): Promise<void> {
  try {
    await checkUrl(url, policy);
  } catch (err) {
    if (!(err instanceof UrlRefusedError)) throw err;
    throw new Problem('url-refused', `${path}: ${err.message}`, { errors: [{ path, message: err.message }] });
  }
}
