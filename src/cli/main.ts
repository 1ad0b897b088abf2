/** `switchyard <command>`: the service's entry point for people and for the processes it starts. */
import { ConfigError, loadConfig } from '../config';
import { ActionNeeded } from '../errors';
import { createLogger } from '../logger';
import { api } from './api';
import { autoscale } from './autoscale';
import { batchCommand } from './batches';
import { cluster } from './cluster';
import { jobsCommand } from './jobs';
import { poolsCommand } from './pools';
import { workflowBundle } from '../worker/workflow-bundle';
import { setup } from './setup';
import { up } from './up';
import { worker } from './worker';

const USAGE = `switchyard <command>

  up [--autoscale] [--cluster]
                              Temporal dev server (unless TEMPORAL_ADDRESS is set), workers and API;
                              --autoscale: pool workers follow each pool's scaling policy;
                              --cluster: on the local cluster (\`cluster up\`) instead of the dev server
  cluster up [--no-ui] | down | status
                              a local multi-service Temporal cluster on PostgreSQL (and its Web UI), kept running
                              in the background
  worker [--workflows] [--pool NAME ...]
                              a worker process with the given roles (default: from config)
  autoscale                   start and stop each pool's worker processes to follow its scaling policy
  api                         the HTTP API
  setup                       prepare an external Temporal server (search attributes)
  bundle                      build the workflow bundle workers start from (done on first start otherwise)
  submit --task TASK (--text TEXT | --message ROLE:TEXT ...) [--pool P] [--priority 1-5] [--wait]
  status JOB_ID               print a job
  watch JOB_ID                follow a job until it ends
  cancel JOB_ID               cancel a job
  retry JOB_ID                run a failed, timed-out or cancelled job again
  batch submit FILE.jsonl [--pool P] [--window 24h] [--priority 1-5] [--wait]
                              run a JSONL file of requests as one batch; --wait shows its progress
  batch status|cancel|output|errors BATCH_ID | batch list
                              read, cancel or list batches; their output and errors as JSON Lines
  pools [POOL]                queue, workers, limits and breaker of the pools (operator key)
  pause POOL [--reason TEXT]  stop dispatching a pool's work; jobs wait in its queue (operator key)
  resume POOL                 dispatch a paused pool's work again (operator key)

Configuration comes from environment variables; see docs/configuration.md.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === '--help' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const config = loadConfig();
  const log = createLogger(config.logLevel, { role: command, pid: process.pid });
  switch (command) {
    case 'up':
      return up(config, args);
    case 'worker':
      return worker(config, args, log);
    case 'autoscale':
      return autoscale(config, log);
    case 'api':
      return api(config, log);
    case 'setup':
      return setup(config);
    case 'cluster':
      return cluster(config, args);
    case 'bundle':
      console.log((await workflowBundle(log)).path);
      return 0;
    case 'submit':
    case 'status':
    case 'watch':
    case 'cancel':
    case 'retry':
      return jobsCommand(config, command, args);
    case 'batch':
      return batchCommand(config, args);
    case 'pools':
    case 'pause':
    case 'resume':
      return poolsCommand(config, command, args);
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else if (err instanceof ActionNeeded) console.error(`switchyard: ${err.message}`);
    else console.error(`switchyard: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 1;
  },
);
