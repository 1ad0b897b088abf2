/** The per-tenant token bucket and each API replica's share of a tenant's rate, at given times. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replicaQuota, TokenBucket } from '../../src/api/rate-limit';

test('a full bucket admits its quota at once, then refuses until it refills, and says when', () => {
  const bucket = new TokenBucket(3, 0);
  assert.deepEqual(bucket.take(0), { allowed: true, remaining: 2, resetS: 1, retryAfterS: 0 });
  assert.deepEqual(bucket.take(0), { allowed: true, remaining: 1, resetS: 1, retryAfterS: 0 });
  assert.deepEqual(bucket.take(0), { allowed: true, remaining: 0, resetS: 1, retryAfterS: 1 });
  assert.deepEqual(bucket.take(100), { allowed: false, remaining: 0, resetS: 1, retryAfterS: 1 });
  // 3 per second: a token every 333 ms.
  assert.equal(bucket.take(300).allowed, false);
  assert.deepEqual(bucket.take(400), { allowed: true, remaining: 0, resetS: 1, retryAfterS: 1 });
});

test('an idle bucket refills to its quota and no further', () => {
  const bucket = new TokenBucket(5, 0);
  for (let i = 0; i < 5; i++) assert.equal(bucket.take(0).allowed, true);
  assert.equal(bucket.take(0).allowed, false);
  assert.deepEqual(bucket.take(60_000), { allowed: true, remaining: 4, resetS: 1, retryAfterS: 0 });
  for (let i = 0; i < 4; i++) assert.equal(bucket.take(60_000).allowed, true);
  assert.equal(bucket.take(60_000).allowed, false);
});

test('over a long run the bucket admits its rate, plus the one burst it starts with', () => {
  const bucket = new TokenBucket(10, 0);
  let admitted = 0;
  // A request every 10 ms for 5 s: 500 asked, 10/s allowed.
  for (let at = 0; at <= 5000; at += 10) if (bucket.take(at).allowed) admitted++;
  assert.ok(admitted >= 10 * 5 && admitted <= 10 * 5 + 10 + 1, `${admitted} admitted`);
});

test("a replica's quota is its share of the rate, rounded down, at least 1; 0 stays no limit", () => {
  assert.equal(replicaQuota(100, 1), 100);
  assert.equal(replicaQuota(100, 3), 33);
  assert.equal(replicaQuota(5, 10), 1);
  assert.equal(replicaQuota(0, 4), 0);
});
