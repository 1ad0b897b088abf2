/**
 * The encryption key `switchyard up` uses when none is configured and the API stays on loopback: made
 * once in the data directory, readable by its owner only, and reused on every start, so the embedded
 * default is encrypted too. It is the only key that reads that data: it belongs with the data directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { newKeyEntry, parseEncryptionKeys } from '../crypto/key-ring';
import { ActionNeeded } from '../errors';

export const LOCAL_KEY_FILE = 'encryption-key';

/** The key as SWITCHYARD_ENCRYPTION_KEYS takes it (`local:<base64>`), from `<dataDir>/encryption-key`, made if missing. */
export function localEncryptionKey(dataDir: string): { entry: string; file: string; created: boolean } {
  const file = path.join(dataDir, LOCAL_KEY_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  let created = true;
  try {
    // `wx`: two starts at once must not each write a key of their own.
    fs.writeFileSync(file, `${newKeyEntry('local')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    created = false;
  }
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077)
    throw new ActionNeeded(`${file} holds the encryption key and others may read it (mode ${mode.toString(8)}): chmod 600 ${file}`);
  const entry = fs.readFileSync(file, 'utf8').trim();
  const { keys, problems } = parseEncryptionKeys(entry);
  if (problems.length || keys.length !== 1)
    throw new ActionNeeded(
      `${file} must hold one key as SWITCHYARD_ENCRYPTION_KEYS writes it (id:base64)${problems.length ? `: ${problems.join('; ')}` : ''}`,
    );
  return { entry, file, created };
}
