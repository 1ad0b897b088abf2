/**
 * The Temporal server for the local cluster, built from its pinned Go module (`cmd/server` and the SQL tool
 * `cmd/tools/sql`), with the module's PostgreSQL schemas copied beside the binaries; and the schema
 * set-up: databases created, then migrated to the module's version by Temporal's own SQL tool.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureGoProgram, type GoBuildOptions, type GoProgram } from './go-build';
import { PG_USER } from './postgres';

const run = promisify(execFile);

const SCHEMA = path.join('schema', 'postgresql', 'v12');

/** The server version of the local cluster, docker-compose.yml and deploy/k8s/temporal alike (test/unit/deploy-manifests.test.ts). */
export const TEMPORAL_SERVER: GoProgram = {
  name: 'temporal-server',
  module: 'go.temporal.io/server',
  version: 'v1.32.2',
  packages: ['cmd/server', 'cmd/tools/sql'],
  moduleFolders: [SCHEMA],
};
/** Temporal's two databases and their schema folders under SCHEMA. */
export const DATABASES = [
  { name: 'temporal', schema: 'temporal' },
  { name: 'temporal_visibility', schema: 'visibility' },
] as const;

export interface TemporalServerBinaries {
  server: string;
  sql: string;
  /** `<module>/schema/postgresql/v12`, as copied beside the binaries. */
  schemaDir: string;
  version: string;
}

export async function ensureTemporalServer(opts: GoBuildOptions): Promise<TemporalServerBinaries & { builtMs: number | null }> {
  const { dir, builtMs } = await ensureGoProgram(TEMPORAL_SERVER, opts);
  return {
    server: path.join(dir, 'server'),
    sql: path.join(dir, 'sql'),
    schemaDir: path.join(dir, SCHEMA),
    version: TEMPORAL_SERVER.version,
    builtMs,
  };
}

/** Creates both databases if missing and brings their schemas to this server version's. Idempotent. */
export async function migrateSchemas(
  bin: TemporalServerBinaries,
  db: { port: number; password: string },
  log: (line: string) => void,
): Promise<void> {
  const env = { ...process.env, SQL_PASSWORD: db.password };
  const sql = async (database: string, args: string[]) => {
    const argv = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(db.port), '-u', PG_USER, '--db', database, ...args];
    try {
      const { stdout, stderr } = await run(bin.sql, argv, { env, timeout: 120_000, maxBuffer: 16 << 20 });
      return `${stdout}${stderr}`;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`temporal sql tool ${args.join(' ')} on ${database} failed:\n${`${e.stdout ?? ''}${e.stderr ?? e.message}`.trim()}`, {
        cause: err,
      });
    }
  };
  const t0 = Date.now();
  for (const { name, schema } of DATABASES) {
    const versioned = path.join(bin.schemaDir, schema, 'versioned');
    await sql(name, ['create']).catch((err: Error) => {
      if (!/already exists/i.test(err.message)) throw err;
    });
    // update-schema fails only on a database that was never set up (as in deploy/temporal/setup-postgres.sh).
    await sql(name, ['update-schema', '-d', versioned]).catch(async () => {
      await sql(name, ['setup-schema', '-v', '0.0']);
      await sql(name, ['update-schema', '-d', versioned]);
    });
  }
  log(`Temporal schemas (${DATABASES.map((d) => d.name).join(', ')}) at ${bin.version} in ${Date.now() - t0} ms`);
}

/** The server's own check of a dynamic config file: its warnings (unknown keys, values of the wrong type), if any. */
export async function dynamicConfigWarnings(bin: Pick<TemporalServerBinaries, 'server'>, file: string): Promise<string[]> {
  const { stdout, stderr } = await run(bin.server, ['validate-dynamic-config', file], { timeout: 30_000 });
  return `${stdout}${stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('warning:'));
}
