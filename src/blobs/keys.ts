/**
 * What a blob key may look like, the same for every store: `/`-separated segments of letters, digits,
 * `_`, `-` and `.`, none empty and none starting with a dot. So a key never climbs out of its store
 * (`..`), is never absolute, and never collides with a store's own temp files (which start with a dot).
 */
import { SwitchyardError } from '../errors';

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

export class InvalidBlobKeyError extends SwitchyardError {
  override readonly name = 'InvalidBlobKeyError';
  readonly code = 'invalid-blob-key';
  constructor(readonly key: string) {
    super(`"${key}" is not a valid blob key: segments of letters, digits, _ - . separated by /, none empty or starting with a dot`);
  }
}

export const isBlobKey = (key: string): boolean => key.split('/').every((segment) => SEGMENT.test(segment));

/** Returns `key` when it is valid; throws InvalidBlobKeyError otherwise. Scopes follow the same rule. */
export function checkBlobKey(key: string): string {
  if (!isBlobKey(key)) throw new InvalidBlobKeyError(key);
  return key;
}
