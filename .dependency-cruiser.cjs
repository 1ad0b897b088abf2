/* global module */
/**
 * The layering of docs/architecture.md, checked by `npm run lint`: each folder is one role and imports
 * point down; workflows stay deterministic; test, bench and the testkit do not lean on each other.
 */
const DOMAIN = '^src/(jobs|documents|conversations)/';
/** What workflow code may import: contracts, pure domain code and its own folder. */
const WORKFLOW_SAFE = [
  '^workflows/',
  DOMAIN,
  '^src/inference/(limiter-contract|limiter-state|breaker|token-window|provider)\\.ts$',
  '^src/batches/contract\\.ts$',
  '^src/temporal/task-queues\\.ts$',
  '^src/blobs/store\\.ts$',
  '@temporalio/(workflow|common)',
];

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'Import cycles, type-only ones included.', from: {}, to: { circular: true } },
    {
      name: 'workflows-deterministic',
      severity: 'error',
      comment: 'Workflows import only contracts and pure domain code (activities as types only).',
      from: { path: '^workflows/' },
      to: { pathNot: WORKFLOW_SAFE, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'workflows-only-in-worker',
      severity: 'error',
      comment: 'Only the worker (and workflow tests) load workflow code; clients and the API use the contracts.',
      from: { path: '^(src|activities|testkit|bench)/', pathNot: '^src/worker/' },
      to: { path: '^workflows/' },
    },
    {
      name: 'domain-is-pure',
      severity: 'error',
      comment: 'Domain and contract modules are bundled into workflows: no clients, API, worker, local processes or config.',
      from: { path: DOMAIN },
      to: { path: '^(src/(api|cli|clients|worker|local|scaling|net|config\\.ts)|activities|workflows)' },
    },
    {
      name: 'clients-below-api',
      severity: 'error',
      from: { path: '^src/clients/' },
      to: { path: '^(src/(api|cli|worker)|activities)/' },
    },
    {
      name: 'api-below-cli',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^(src/(cli|worker|local)|activities)/' },
    },
    {
      name: 'temporal-is-plumbing',
      severity: 'error',
      comment: 'src/temporal holds connection, proto helpers, task queues and search attributes only.',
      from: { path: '^src/temporal/' },
      to: { path: '^(src/(api|cli|clients|worker|local|scaling)|activities|workflows)/' },
    },
    {
      name: 'crypto-is-a-leaf',
      severity: 'error',
      comment: 'src/crypto holds the key ring and the sealed-blob format: pure code on nothing but the error base.',
      from: { path: '^src/crypto/' },
      to: { path: '^(src/(?!crypto/|errors\\.ts$)|activities/|workflows/)' },
    },
    {
      name: 'local-below-roles',
      severity: 'error',
      comment: 'The process kit knows the roles only by the ready lines they log: leaf modules that load neither Express nor a worker.',
      from: { path: '^src/local/' },
      to: { path: '^(src/(api|clients|worker|scaling)|activities|workflows)/', pathNot: '/ready-line\\.ts$' },
    },
    {
      name: 'cli-is-the-top',
      severity: 'error',
      from: { pathNot: '^(src/cli/|bin/)' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'product-code-not-on-tests',
      severity: 'error',
      from: { path: '^(src|workflows|activities)/' },
      to: { path: '^(test|testkit|bench)/' },
    },
    { name: 'testkit-stands-alone', severity: 'error', from: { path: '^testkit/' }, to: { path: '^(test|bench)/' } },
    { name: 'tests-not-on-bench', severity: 'error', from: { path: '^test/' }, to: { path: '^bench/' } },
    { name: 'bench-not-on-tests', severity: 'error', from: { path: '^bench/' }, to: { path: '^test/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|\\.data|\\.tools)' },
  },
};
