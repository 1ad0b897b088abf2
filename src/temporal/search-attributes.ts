/**
 * Registering Switchyard's search attributes (src/jobs/search-attributes.ts): the dev server gets them
 * as start flags, and `ensureSearchAttributes` adds them to an external server.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { isGrpcServiceError, type ConnectionLike } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
// Not re-exported from the package root; the client itself imports it from here.
import { encodeSearchAttributeIndexedValueType, type SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { SEARCH_ATTRIBUTES } from '../jobs/search-attributes';

export { SEARCH_ATTRIBUTES };

const ALL_KEYS: SearchAttributeKey<SearchAttributeType>[] = Object.values(SEARCH_ATTRIBUTES);

/** The CLI spells types as Text, Keyword, Int, Double, Bool, Datetime, KeywordList. */
const CLI_TYPE_NAMES: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** `['--search-attribute', 'JobTenant=Keyword', ...]` for `temporal server start-dev`. */
export function searchAttributeFlags(): string[] {
  return ALL_KEYS.flatMap((k) => ['--search-attribute', `${k.name}=${CLI_TYPE_NAMES[k.type]}`]);
}

const NOT_ALLOWED = [GrpcStatus.PERMISSION_DENIED, GrpcStatus.UNIMPLEMENTED, GrpcStatus.UNAUTHENTICATED];
const isNotAllowed = (err: unknown) => isGrpcServiceError(err) && NOT_ALLOWED.includes(err.code);

export interface EnsureResult {
  /** Attributes this call registered. */
  added: string[];
  /** True when the server refused operator calls (e.g. Temporal Cloud) and nothing could be checked or added. */
  notAllowed: boolean;
}

/**
 * Registers any missing attribute on `namespace`. Idempotent. On Temporal Cloud the operator API is not
 * allowed, so instead of failing start-up this logs how to add them there.
 */
export async function ensureSearchAttributes(
  target: Pick<ConnectionLike, 'operatorService'> | { connection: Pick<ConnectionLike, 'operatorService'> },
  namespace: string,
  log: (line: string) => void = (line) => console.error(line),
): Promise<EnsureResult> {
  const operator = 'connection' in target ? target.connection.operatorService : target.operatorService;
  const cloudHint = () =>
    log(
      `search attributes: this server does not allow registering them (Temporal Cloud?). Add them once to namespace "${namespace}" ` +
        `in the Cloud UI or with: ${ALL_KEYS.map((k) => `tcld namespace search-attributes add -n ${namespace} --sa "${k.name}=${CLI_TYPE_NAMES[k.type]}"`).join(' && ')}`,
    );

  let existing: Record<string, unknown>;
  try {
    existing = (await operator.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (err) {
    if (!isNotAllowed(err)) throw err;
    cloudHint();
    return { added: [], notAllowed: true };
  }

  const wrongType = ALL_KEYS.filter((k) => k.name in existing && existing[k.name] !== encodeSearchAttributeIndexedValueType(k.type));
  if (wrongType.length) {
    throw new Error(
      `search attributes ${wrongType.map((k) => `${k.name} (want ${CLI_TYPE_NAMES[k.type]})`).join(', ')} already exist ` +
        `on namespace "${namespace}" with a different type; remove or rename them on the server`,
    );
  }

  const missing = ALL_KEYS.filter((k) => !(k.name in existing));
  if (!missing.length) return { added: [], notAllowed: false };
  try {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, encodeSearchAttributeIndexedValueType(k.type)!])),
    });
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GrpcStatus.ALREADY_EXISTS) return { added: [], notAllowed: false }; // a concurrent start won
    if (!isNotAllowed(err)) throw err;
    cloudHint();
    return { added: [], notAllowed: true };
  }
  const added = missing.map((k) => k.name);
  log(`search attributes: registered ${added.join(', ')} on namespace "${namespace}"`);
  return { added, notAllowed: false };
}
