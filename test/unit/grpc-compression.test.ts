/** The workers' gRPC compression: none where bandwidth is free (loopback), the SDK's gzip elsewhere, or as set. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config';

const compressionOf = (env: Record<string, string>) => loadConfig(env).temporal.grpcCompression;

test('the embedded server and other loopback addresses get no compression', () => {
  assert.equal(compressionOf({}), 'none');
  assert.equal(compressionOf({ TEMPORAL_ADDRESS: 'localhost:7233' }), 'none');
  assert.equal(compressionOf({ TEMPORAL_ADDRESS: '127.0.0.5:7233' }), 'none');
  assert.equal(compressionOf({ TEMPORAL_ADDRESS: '[::1]:7233' }), 'none');
});

test('a server on another machine gets gzip, as the SDK would', () => {
  assert.equal(compressionOf({ TEMPORAL_ADDRESS: 'temporal.internal:7233' }), 'gzip');
  assert.equal(compressionOf({ TEMPORAL_ADDRESS: 'acme.a1b2c.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k' }), 'gzip');
});

test('TEMPORAL_GRPC_COMPRESSION decides, and anything but gzip or none is refused', () => {
  assert.equal(compressionOf({ TEMPORAL_GRPC_COMPRESSION: 'gzip' }), 'gzip');
  assert.equal(compressionOf({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_GRPC_COMPRESSION: 'none' }), 'none');
  assert.throws(() => compressionOf({ TEMPORAL_GRPC_COMPRESSION: 'brotli' }), /TEMPORAL_GRPC_COMPRESSION/);
});
