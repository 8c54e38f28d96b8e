import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rawRequest, startPair } from './helpers.ts';

// Odd request-targets used to be handed to undici unchecked: its refusal counted as a clone failure, was
// retried on the other clones, and after a dozen such requests a healthy clone was ejected.
describe('balancer: request-targets never count against a clone', async () => {
  const { a, b, lb, port } = await startPair();

  const odd = [
    'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
    'POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
    'DELETE * HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET a.example:80 HTTP/1.1\r\nHost: x\r\n\r\n',
  ];

  test('40 odd requests: each answered by the balancer, no clone touched, none ejected', async () => {
    const seen = a.seen.length + b.seen.length;
    for (let i = 0; i < 40; i++) {
      const { text } = await rawRequest(port, odd[i % odd.length]!, 1500);
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1]);
      assert.ok(status === 200 || status === 400, `answer: ${text.slice(0, 120)}`);
      assert.doesNotMatch(text, /clone [ab]\b|path must|undici|UND_ERR/i, 'the body names no clone');
    }
    assert.equal(a.seen.length + b.seen.length, seen, 'a clone saw an odd request');
    const targets = lb.state().targets as { id: string; ejected: boolean; consecutiveFailures?: number }[];
    for (const t of targets) assert.equal(t.ejected, false, `${t.id} was ejected`);
    assert.doesNotMatch(lb.metrics(), /clones_balancer_retries_total\{[^}]*\} [1-9]/);
    // Both clones still serve.
    const ids = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const { text } = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1500);
      assert.match(text, /^HTTP\/1\.1 200 /);
      ids.add(/x-clones-clone: (\w+)/.exec(text)?.[1] ?? '');
    }
    assert.deepEqual([...ids].sort(), ['a', 'b']);
  });

  test('OPTIONS * is answered by the balancer with Allow', async () => {
    const { text } = await rawRequest(
      port,
      'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      1500,
    );
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /\r\nallow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n/i);
    assert.doesNotMatch(text, /x-clones-clone/);
  });

  test('absolute-form is normalised: origin-form path, its authority as Host (RFC 9112 §3.2.2)', async () => {
    const [beforeA, beforeB] = [a.seen.length, b.seen.length];
    const { text } = await rawRequest(
      port,
      'GET http://other.example:8080/p/q?x=1 HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n',
      1500,
    );
    assert.match(text, /^HTTP\/1\.1 200 /);
    const got = [...a.seen.slice(beforeA), ...b.seen.slice(beforeB)];
    assert.equal(got.length, 1);
    assert.equal(got[0]!.url, '/p/q?x=1');
    assert.equal(got[0]!.headers.host, 'other.example:8080');
  });

  test('absolute-form without a path becomes /', async () => {
    const [beforeA, beforeB] = [a.seen.length, b.seen.length];
    const { text } = await rawRequest(
      port,
      'GET http://h.example?y=2 HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n',
      1500,
    );
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.equal([...a.seen.slice(beforeA), ...b.seen.slice(beforeB)][0]!.url, '/?y=2');
  });
});
