import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { allowList, forbiddenReason, parseCidr } from '../../src/net/addresses';
import {
  checkUrl,
  fetchOutbound,
  OutboundNetworkError,
  OutboundTimeoutError,
  OutboundTooLargeError,
  type OutboundPolicy,
  UrlRefusedError,
} from '../../src/net/outbound';
import { eventually } from '../../testkit/wait';

const STRICT: OutboundPolicy = { allow: [], timeoutMs: 5000, maxBytes: 1024 * 1024, maxRedirects: 3 };
const LOOPBACK_ALLOWED: OutboundPolicy = { ...STRICT, allow: ['127.0.0.1/32'] };

const refusedWith = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof UrlRefusedError, `expected UrlRefusedError, got ${String(err)}`);
  assert.match(err.reason, pattern);
  return true;
};

/** A real server on 127.0.0.1 that answers, redirects, floods and stalls on request. */
let base = '';
const seen: string[] = [];
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  seen.push(`${req.method} ${url.pathname}`);
  const body: Buffer[] = [];
  req.on('data', (d: Buffer) => body.push(d));
  req.on('end', () => {
    switch (url.pathname) {
      case '/hello':
        return res.writeHead(200, { 'content-type': 'text/plain', 'x-test': 'yes' }).end('hello');
      case '/echo':
        return res.writeHead(200).end(`${req.method} ${Buffer.concat(body).toString()}`);
      case '/redirect':
        return res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to')! }).end();
      case '/loop':
        return res.writeHead(302, { location: '/loop' }).end();
      case '/big':
        return res.writeHead(200, { 'content-length': 2 * 1024 * 1024 }).end(Buffer.alloc(2 * 1024 * 1024));
      case '/big-chunked':
        for (let i = 0; i < 32; i++) res.write(Buffer.alloc(64 * 1024));
        return res.end();
      case '/stall-body':
        return res.writeHead(200, { 'content-length': 100 }).write('a little'); // and never the rest
      case '/stall':
        return; // no answer at all
      default:
        return res.writeHead(404).end();
    }
  });
});
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

describe('address ranges', () => {
  it('names the kind of every address that is not public, IPv4-mapped and NAT64 forms included', () => {
    const none = allowList([]);
    const cases: [string, string | null][] = [
      ['127.0.0.1', 'a loopback address'],
      ['10.1.2.3', 'a private address'],
      ['172.31.255.255', 'a private address'],
      ['192.168.0.10', 'a private address'],
      ['169.254.169.254', 'a link-local address'],
      ['100.64.0.1', 'a carrier-grade NAT address'],
      ['0.0.0.0', 'an unspecified ("this network") address'],
      ['224.0.0.251', 'a multicast address'],
      ['255.255.255.255', 'a reserved address'],
      ['::1', 'a loopback address'],
      ['::', 'an unspecified address'],
      ['fd12:3456::1', 'a private (unique local) address'],
      ['fe80::1', 'a link-local address'],
      ['ff02::1', 'a multicast address'],
      ['::ffff:127.0.0.1', 'a loopback address'],
      ['::ffff:a9fe:a9fe', 'a link-local address'],
      ['64:ff9b::a9fe:a9fe', 'a link-local address'],
      ['8.8.8.8', null],
      ['172.32.0.1', null],
      ['100.128.0.1', null],
      ['2606:4700:4700::1111', null],
      ['64:ff9b::808:808', null],
    ];
    for (const [address, why] of cases) assert.equal(forbiddenReason(address, none), why, address);
  });

  it('an allowed range lets its addresses through, mapped forms too, and nothing else', () => {
    const allowed = allowList(['127.0.0.1/32', '10.0.0.0/8', 'fd00::/8']);
    assert.equal(forbiddenReason('127.0.0.1', allowed), null);
    assert.equal(forbiddenReason('::ffff:127.0.0.1', allowed), null);
    assert.equal(forbiddenReason('10.200.1.1', allowed), null);
    assert.equal(forbiddenReason('fd00::5', allowed), null);
    assert.equal(forbiddenReason('127.0.0.2', allowed), 'a loopback address');
    assert.equal(forbiddenReason('169.254.169.254', allowed), 'a link-local address');
  });

  it('parses CIDRs and refuses what is not one', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { network: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('::1/128'), { network: '::1', prefix: 128, family: 'ipv6' });
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0/8', 'localhost/8', '10.0.0.0']) assert.equal(parseCidr(bad), undefined, bad);
    assert.throws(() => allowList(['10.0.0.0/33']), /"10.0.0.0\/33" is not a CIDR range/);
  });
});

describe('checkUrl', () => {
  it('refuses loopback, private, link-local, mapped and named-loopback hosts with a reason', async () => {
    const cases: [string, RegExp][] = [
      ['http://127.0.0.1/', /^127\.0\.0\.1 is a loopback address$/],
      ['http://10.1.2.3/x', /^10\.1\.2\.3 is a private address$/],
      ['http://169.254.169.254/latest/meta-data/', /^169\.254\.169\.254 is a link-local address$/],
      ['http://[::1]:8080/', /^::1 is a loopback address$/],
      ['http://[::ffff:127.0.0.1]/', /^::ffff:7f00:1 is a loopback address$/],
      ['http://2130706433/', /^127\.0\.0\.1 is a loopback address$/], // decimal form, normalised by the URL parser
      ['http://localhost:3000/', /^localhost resolves to (127\.0\.0\.1|::1), a loopback address$/],
    ];
    for (const [url, reason] of cases) await assert.rejects(checkUrl(url, STRICT), refusedWith(reason), url);
  });

  it('refuses other schemes, credentials, non-URLs and hosts that do not exist', async () => {
    await assert.rejects(checkUrl('ftp://example.com/a', STRICT), refusedWith(/^ftp URLs are not allowed, only http and https$/));
    await assert.rejects(checkUrl('file:///etc/passwd', STRICT), refusedWith(/^file URLs/));
    await assert.rejects(checkUrl('gopher://8.8.8.8/', STRICT), refusedWith(/^gopher URLs/));
    await assert.rejects(checkUrl('https://user:secret@8.8.8.8/', STRICT), refusedWith(/user name or password/));
    await assert.rejects(checkUrl('not a url', STRICT), refusedWith(/is not a URL/));
    await assert.rejects(checkUrl('http://no-such-host.invalid/', STRICT), refusedWith(/^no-such-host\.invalid does not resolve/));
  });

  it('lets public addresses through, and loopback when it is allowed', async () => {
    assert.equal((await checkUrl('https://8.8.8.8/doc.pdf', STRICT)).href, 'https://8.8.8.8/doc.pdf');
    assert.equal((await checkUrl('http://[2606:4700:4700::1111]/', STRICT)).hostname, '[2606:4700:4700::1111]');
    await checkUrl('http://127.0.0.1:9/', LOOPBACK_ALLOWED);
    await checkUrl('http://localhost:9/', { allow: ['127.0.0.0/8', '::1/128'] });
  });
});

describe('fetchOutbound', () => {
  it('gets status, headers, body and the final URL from an allowed server', async () => {
    const res = await fetchOutbound(`${base}/hello`, {}, LOOPBACK_ALLOWED);
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-test'], 'yes');
    assert.equal(res.body.toString(), 'hello');
    assert.equal(res.finalUrl, `${base}/hello`);
    const missing = await fetchOutbound(`${base}/nope`, {}, LOOPBACK_ALLOWED);
    assert.equal(missing.status, 404, 'statuses are returned, not thrown');
  });

  it('never connects to a loopback server that is not allowed', async () => {
    const before = seen.length;
    await assert.rejects(fetchOutbound(`${base}/hello`, {}, STRICT), refusedWith(/^127\.0\.0\.1 is a loopback address$/));
    const port = new URL(base).port;
    await assert.rejects(
      fetchOutbound(`http://localhost:${port}/hello`, {}, STRICT),
      refusedWith(/^localhost resolves to .*a loopback address$/),
    );
    assert.equal(seen.length, before, 'the server saw no request');
  });

  it('resolves a host name through the guarded lookup when its addresses are allowed', async () => {
    const port = new URL(base).port;
    const res = await fetchOutbound(`http://localhost:${port}/hello`, {}, { ...STRICT, allow: ['127.0.0.0/8', '::1/128'] });
    assert.equal(res.body.toString(), 'hello');
  });

  it('checks every redirect: an allowed server cannot send the request to a private or metadata address', async () => {
    for (const target of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/', 'http://[::1]/', 'file:///etc/passwd']) {
      await assert.rejects(
        fetchOutbound(`${base}/redirect?to=${encodeURIComponent(target)}`, {}, LOOPBACK_ALLOWED),
        refusedWith(/link-local|private|loopback|file URLs/),
        target,
      );
    }
  });

  it('follows allowed redirects up to the limit; 303 and a redirected POST become a GET, 307 keeps the POST', async () => {
    const ok = await fetchOutbound(`${base}/redirect?to=${encodeURIComponent('/hello')}`, {}, LOOPBACK_ALLOWED);
    assert.equal(ok.body.toString(), 'hello');
    assert.equal(ok.finalUrl, `${base}/hello`);
    const post = { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'payload' };
    const seeOther = await fetchOutbound(`${base}/redirect?status=303&to=/echo`, post, LOOPBACK_ALLOWED);
    assert.equal(seeOther.body.toString(), 'GET ');
    const temporary = await fetchOutbound(`${base}/redirect?status=307&to=/echo`, post, LOOPBACK_ALLOWED);
    assert.equal(temporary.body.toString(), 'POST payload');
    await assert.rejects(fetchOutbound(`${base}/loop`, {}, LOOPBACK_ALLOWED), refusedWith(/^more than 3 redirects/));
    const manual = await fetchOutbound(`${base}/loop`, { redirect: 'manual' }, LOOPBACK_ALLOWED);
    assert.equal(manual.status, 302);
    assert.equal(manual.headers.location, '/loop');
  });

  it('stops reading past maxBytes, with or without a Content-Length', async () => {
    for (const path of ['/big', '/big-chunked']) {
      await assert.rejects(fetchOutbound(`${base}${path}`, {}, LOOPBACK_ALLOWED), (err: unknown) => {
        assert.ok(err instanceof OutboundTooLargeError, String(err));
        assert.equal(err.maxBytes, 1024 * 1024);
        return true;
      });
    }
    const roomy = await fetchOutbound(`${base}/big-chunked`, {}, { ...LOOPBACK_ALLOWED, maxBytes: 2 * 1024 * 1024 });
    assert.equal(roomy.body.length, 2 * 1024 * 1024);
  });

  it('gives up after timeoutMs on a server that does not answer, or stops mid-body', async () => {
    for (const path of ['/stall', '/stall-body']) {
      const started = Date.now();
      await assert.rejects(fetchOutbound(`${base}${path}`, {}, { ...LOOPBACK_ALLOWED, timeoutMs: 300 }), OutboundTimeoutError, path);
      const took = Date.now() - started;
      assert.ok(took >= 290 && took < 2000, `${path} took ${took} ms`);
    }
  });

  it("stops at once with the caller's reason when the caller aborts", async () => {
    const controller = new AbortController();
    const stalls = seen.filter((s) => s === 'GET /stall').length;
    const fetching = assert.rejects(fetchOutbound(`${base}/stall`, {}, LOOPBACK_ALLOWED, controller.signal), /activity cancelled/);
    await eventually('the request to stall at the server', () =>
      seen.filter((s) => s === 'GET /stall').length > stalls ? true : undefined,
    );
    const abortedAt = Date.now();
    controller.abort(new Error('activity cancelled'));
    await fetching;
    assert.ok(Date.now() - abortedAt < 2000);
  });

  it('reports a refused connection as a network error with its code', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(fetchOutbound(`http://127.0.0.1:${port}/`, {}, LOOPBACK_ALLOWED), (err: unknown) => {
      assert.ok(err instanceof OutboundNetworkError, String(err));
      assert.equal(err.systemCode, 'ECONNREFUSED');
      return true;
    });
  });
});
