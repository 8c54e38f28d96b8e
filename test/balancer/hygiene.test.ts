import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { rawRequest, startBalancer, startUpstream } from './helpers.ts';

/** RFC 9112 / desync vectors (after aws/http-desync-guardian's classes): each must be refused and never reach a clone. */
const VECTORS: [name: string, request: string, status: number][] = [
  [
    'Content-Length with Transfer-Encoding',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  [
    'duplicate Content-Length, different values',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    400,
  ],
  [
    'duplicate Content-Length, same value',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
    400,
  ],
  ['Content-Length list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello', 400],
  ['non-numeric Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5a\r\n\r\nhello', 400],
  ['negative Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400],
  ['plus-signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', 400],
  [
    'Content-Length past 64 bits',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551617\r\n\r\n',
    400,
  ],
  [
    'Transfer-Encoding not ending in chunked',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
    400,
  ],
  ['Transfer-Encoding gzip only', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
  [
    'Transfer-Encoding chunked twice (two lines)',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  [
    'Transfer-Encoding chunked, chunked',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  [
    'Transfer-Encoding with another coding first',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    501,
  ],
  [
    'Transfer-Encoding in HTTP/1.0',
    'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  [
    'Transfer_Encoding with underscore',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  ['Content_Length with underscore', 'POST / HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\nhello', 400],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n', 400],
  [
    'obs-fold on Transfer-Encoding',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  ['space before colon', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400],
  ['space in header name', 'GET / HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n', 400],
  ['control character in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400],
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', 400],
  ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rTransfer-Encoding: chunked\r\n\r\n', 400],
  ['bare LF line ending inside headers', 'GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n', 400],
  ['missing Host', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400],
  ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', 400],
  ['oversized headers', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  // Node keeps only the first 2,000 lines: what comes after them must not pass unseen.
  [
    'a second Host after 2,000 header lines',
    `GET / HTTP/1.1\r\nHost: a.example\r\n${'a:b\r\n'.repeat(2000)}Host: b.example\r\n\r\n`,
    431,
  ],
  [
    'TE gzip, chunked after 2,000 header lines',
    `POST / HTTP/1.1\r\nHost: x\r\n${'a:b\r\n'.repeat(2000)}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    431,
  ],
  [
    'a POST body announced after 2,000 header lines',
    `POST / HTTP/1.1\r\nHost: x\r\n${'a:b\r\n'.repeat(2000)}Content-Length: 5\r\n\r\nhello`,
    431,
  ],
  [
    'more header lines than server.maxHeaderCount',
    `GET / HTTP/1.1\r\nHost: x\r\n${'a:b\r\n'.repeat(100)}\r\n`,
    431,
  ],
  ['Host with a path and userinfo', 'GET / HTTP/1.1\r\nHost: evil.example/../x@y\r\n\r\n', 400],
  ['Host with a query', 'GET / HTTP/1.1\r\nHost: a.example?x=1\r\n\r\n', 400],
  ['Host with a bad port', 'GET / HTTP/1.1\r\nHost: a.example:80x\r\n\r\n', 400],
  ['Host with a space', 'GET / HTTP/1.1\r\nHost: a .example\r\n\r\n', 400],
  ['absolute-form with userinfo', 'GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n', 400],
  ['absolute-form with another scheme', 'GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['GET *', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['POST *', 'POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', 400],
  ['DELETE *', 'DELETE * HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['authority-form outside CONNECT', 'GET a.example:80 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['CONNECT', 'CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n', 501],
  ['a fragment in the target', 'GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
];

describe('balancer: request hygiene', async () => {
  const up = await startUpstream('a');
  const { lb, port } = await startBalancer({
    server: { headersTimeout: 400 },
    targets: [{ id: 'a', url: up.url }],
  });
  after(async () => {
    await lb.close();
    await up.close();
  });

  for (const [name, bytes, status] of VECTORS) {
    test(`${name}: ${status}, connection closed, nothing reaches the clone`, async () => {
      const before = up.seen.length;
      const { text, closed } = await rawRequest(port, bytes, 1500);
      const line = text.split('\r\n')[0];
      assert.equal(up.seen.length, before, 'the clone saw the request');
      assert.match(
        line ?? '',
        new RegExp(`^HTTP/1\\.1 ${status} `),
        `answer: ${JSON.stringify(text.slice(0, 200))}`,
      );
      assert.ok(closed, 'the connection was closed');
      if (status !== 400 || text.includes('{')) assert.match(text, /"code":"CLONES_BALANCER_/);
    });
  }

  test('a bad chunk in the body aborts the upstream request and closes the connection', async () => {
    const before = up.seen.length;
    const bytes = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n';
    const { closed } = await rawRequest(port, bytes, 1500);
    assert.ok(closed);
    assert.equal(up.seen.length, before, 'the clone never got a complete request');
  });

  test('a clean request still works on the same server', async () => {
    const { text } = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1500);
    assert.match(text, /^HTTP\/1\.1 200 /);
  });

  test('slow headers (slowloris) get 408 and a closed connection after headersTimeout', async () => {
    const started = Date.now();
    const { text, closed } = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ', 3000);
    assert.ok(closed);
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - started < 2500);
  });

  test('rejections are counted by reason', () => {
    assert.match(lb.metrics(), /clones_balancer_rejected_requests_total\{reason="duplicate-host"\} 1/);
  });
});
