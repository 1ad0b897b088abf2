/** Every scenario `npm run bench -- <name>` knows. */
import type { Scenario } from '../lib/scenario';
import { autoscale } from './autoscale';
import { batch } from './batch';
import { batching } from './batching';
import { chat } from './chat';
import { cluster } from './cluster';
import { document } from './document';
import { embeddedSqlite } from './embedded-sqlite';
import { engineCost } from './engine-cost';
import { fairness } from './fairness';
import { limits } from './limits';
import { overhead } from './overhead';
import { peerBullmq } from './peer-bullmq';
import { scaleOut } from './scale-out';

export const SCENARIOS: readonly Scenario[] = [
  overhead,
  scaleOut,
  peerBullmq,
  fairness,
  batching,
  limits,
  embeddedSqlite,
  engineCost,
  autoscale,
  chat,
  document,
  cluster,
  batch,
];
