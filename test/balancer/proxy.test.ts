import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  fetchText,
  sleep,
  startBalancer,
  startUpstream,
  startWebSocketUpstream,
  webSocketUpgrade,
} from './helpers.ts';

describe('balancer: core proxy', async () => {
  const up = await startUpstream('a');
  const { lb, url, port } = await startBalancer({ targets: [{ id: 'a', url: up.url, release: 'r1' }] });
  after(async () => {
    await lb.close();
    await up.close();
  });

  test('proxies a request and tags the answer with the clone and release', async () => {
    const res = await fetchText(`${url}/hello?x=1`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-clones-clone'], 'a');
    assert.equal(res.headers['x-clones-release'], 'r1');
    assert.match(String(res.headers.via), /1\.1 clones/);
    const seen = JSON.parse(res.body);
    assert.equal(seen.url, '/hello?x=1');
    assert.equal(seen.headers.host, `127.0.0.1:${port}`);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${port}`);
    assert.match(seen.headers.via, /^1\.1 clones$/);
  });

  test('appends to X-Forwarded-* from a trusted (loopback) peer', async () => {
    const res = await fetchText(`${url}/`, {
      headers: {
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'shop.example',
      },
    });
    const seen = JSON.parse(res.body);
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], 'shop.example');
  });

  test('strips hop-by-hop headers and the fields Connection names, in both directions', async () => {
    const hop = await startUpstream('hop', (_req, res, body) => {
      res.writeHead(200, {
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': 'leak',
        'proxy-authenticate': 'Basic',
        'x-kept': 'yes',
      });
      res.end(body);
    });
    const { lb: lb2, url: url2 } = await startBalancer({ targets: [{ id: 'hop', url: hop.url }] });
    try {
      const res = await fetchText(`${url2}/`, {
        headers: {
          connection: 'keep-alive, x-drop-me',
          'x-drop-me': '1',
          te: 'trailers',
          'proxy-authorization': 'x',
          'x-keep': '2',
        },
      });
      assert.equal(res.headers['x-secret-hop'], undefined);
      assert.equal(res.headers['proxy-authenticate'], undefined);
      assert.equal(res.headers['x-kept'], 'yes');
      const seen = hop.seen[0]!.headers;
      assert.equal(seen['x-drop-me'], undefined);
      assert.equal(seen.te, undefined);
      assert.equal(seen['proxy-authorization'], undefined);
      assert.equal(seen['x-keep'], '2');
    } finally {
      await lb2.close();
      await hop.close();
    }
  });

  test('streams a large chunked request body to the clone intact', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 'abcdefghij');
    const hash = createHash('sha256').update(big).digest('hex');
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request(
        `${url}/upload`,
        { method: 'POST', headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks).toString()));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < big.length; i += 256 * 1024) req.write(big.subarray(i, i + 256 * 1024));
      req.end();
    });
    const seen = JSON.parse(answer);
    assert.equal(createHash('sha256').update(seen.body).digest('hex'), hash);
    assert.equal(seen.headers['transfer-encoding'], 'chunked');
  });

  test('streams the response: the first chunk arrives before the clone has finished', async () => {
    const slow = await startUpstream('slow', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      setTimeout(() => res.end('last'), 400);
    });
    const { lb: lb2, url: url2 } = await startBalancer({ targets: [{ id: 's', url: slow.url }] });
    try {
      const started = Date.now();
      const firstAt = await new Promise<number>((resolve) => {
        request(`${url2}/`, (res) => {
          res.once('data', () => resolve(Date.now() - started));
          res.resume();
        }).end();
      });
      assert.ok(firstAt < 300, `first chunk after ${firstAt} ms`);
    } finally {
      await lb2.close();
      await slow.close();
    }
  });

  test('cloneHeaders: false leaves the answer untagged', async () => {
    const { lb: lb2, url: url2 } = await startBalancer({
      cloneHeaders: false,
      targets: [{ id: 'a', url: up.url }],
    });
    try {
      const res = await fetchText(`${url2}/`);
      assert.equal(res.headers['x-clones-clone'], undefined);
      assert.equal(res.headers['x-clones-release'], undefined);
    } finally {
      await lb2.close();
    }
  });

  test('relays WebSocket upgrades and pipes raw frames both ways', async () => {
    const ws = await startWebSocketUpstream('ws', (socket) => {
      socket.on('data', (d) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    });
    const { lb: lb2, port: port2 } = await startBalancer({ targets: [{ id: 'ws', url: ws.url }] });
    try {
      const socket = connect(port2, '127.0.0.1');
      const received: Buffer[] = [];
      socket.on('data', (d) => received.push(d));
      socket.write(webSocketUpgrade('/chat'));
      await sleep(150);
      const head = Buffer.concat(received).toString();
      assert.match(head, /^HTTP\/1\.1 101/);
      assert.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
      assert.match(head, /x-clones-clone: ws/);
      received.length = 0;
      socket.write('ping');
      await sleep(100);
      assert.equal(Buffer.concat(received).toString(), 'echo:ping');
      assert.equal(lb2.state().targets[0]!.websockets, 1);
      socket.destroy();
      await sleep(50);
      assert.equal(lb2.state().targets[0]!.websockets, 0);
    } finally {
      await lb2.close();
      await ws.close();
    }
  });
});

describe('balancer: X-Forwarded-* from an untrusted peer', async () => {
  const up = await startUpstream('a');
  const { lb, url } = await startBalancer({ trustedProxies: [], targets: [{ id: 'a', url: up.url }] });
  after(async () => {
    await lb.close();
    await up.close();
  });

  test('overwrites X-Forwarded-For, -Proto and -Host', async () => {
    const res = await fetchText(`${url}/`, {
      headers: {
        host: 'real.example',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=6.6.6.6',
      },
    });
    const seen = JSON.parse(res.body);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'real.example');
    assert.equal(seen.headers.forwarded, undefined);
  });
});

describe('balancer: error answers', () => {
  test('503 CLONES_BALANCER_NO_TARGET with no targets', async () => {
    const { lb, url } = await startBalancer();
    try {
      const res = await fetchText(`${url}/`);
      assert.equal(res.status, 503);
      assert.equal(JSON.parse(res.body).error.code, 'CLONES_BALANCER_NO_TARGET');
    } finally {
      await lb.close();
    }
  });

  test('502 CLONES_BALANCER_UPSTREAM_ERROR when every clone refuses', async () => {
    const gone = await startUpstream('gone');
    await gone.close();
    const { lb, url } = await startBalancer({ targets: [{ id: 'gone', url: gone.url }] });
    try {
      const res = await fetchText(`${url}/`);
      assert.equal(res.status, 502);
      assert.equal(JSON.parse(res.body).error.code, 'CLONES_BALANCER_UPSTREAM_ERROR');
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    } finally {
      await lb.close();
    }
  });

  test('504 CLONES_BALANCER_UPSTREAM_TIMEOUT when the clone is too slow', async () => {
    const up = await startUpstream('slow');
    const { lb, url } = await startBalancer({
      upstream: { timeout: 100 },
      retries: { attempts: 0 },
      targets: [{ id: 's', url: up.url }],
    });
    try {
      const res = await fetchText(`${url}/slow?ms=1000`);
      assert.equal(res.status, 504);
      assert.equal(JSON.parse(res.body).error.code, 'CLONES_BALANCER_UPSTREAM_TIMEOUT');
    } finally {
      await lb.close();
      await up.close();
    }
  });
});

describe('balancer: upstream keep-alive', () => {
  test('reuses upstream sockets, and retires them before the clone keep-alive timeout', async () => {
    const up = await startUpstream('ka');
    up.server.keepAliveTimeout = 2000; // announces Keep-Alive: timeout=2
    const { lb, url } = await startBalancer({ targets: [{ id: 'ka', url: up.url }] });
    try {
      for (let i = 0; i < 5; i++) await fetchText(`${url}/`);
      assert.equal(up.connections, 1);
      await sleep(1300);
      await fetchText(`${url}/`);
      assert.equal(up.connections, 2, 'the idle socket was closed by the balancer after ~1 s');
    } finally {
      await lb.close();
      await up.close();
    }
  });
});
