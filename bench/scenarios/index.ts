/** Every scenario `npm run bench -- <name>` knows. */
import type { Scenario } from '../lib/scenario';
import { overhead } from './overhead';
import { peerBullmq } from './peer-bullmq';
import { scaleOut } from './scale-out';

export const SCENARIOS: readonly Scenario[] = [overhead, scaleOut, peerBullmq];
