import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import type { BodySink } from '../../src/balancer/request-body.ts';
import { UpstreamConnection, type UpstreamRequest } from '../../src/balancer/upstream-connection.ts';

// The balancer's own HTTP/1.1 client, against a raw TCP server that answers exactly the bytes each test
// writes: framing, 1xx, keep-alive rules, and the answers it must refuse.

interface Outcome {
  status?: number;
  reason?: string;
  raw?: string[];
  body: string;
  error?: string;
  complete: boolean;
}

interface RawServer {
  port: number;
  /** Connections accepted. */
  connections: number;
  /** Every byte received, per connection. */
  received: string[];
  sockets: Socket[];
}

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A TCP server that calls `answer` with the socket and the request bytes seen so far on it. */
async function rawServer(answer: (socket: Socket, seen: string, n: number) => void): Promise<RawServer> {
  const state: RawServer = { port: 0, connections: 0, received: [], sockets: [] };
  const server = createServer((socket) => {
    const index = state.connections++;
    state.received[index] = '';
    state.sockets.push(socket);
    let requests = 0;
    socket.on('data', (chunk) => {
      state.received[index] += chunk.toString('latin1');
      const seen = state.received[index]!;
      // One call per request line (bodies are checked by the tests that send them).
      const heads = seen.match(/(?:GET|HEAD|POST|PUT) \S+ HTTP\/1\.1\r\n/g)?.length ?? 0;
      while (requests < heads) answer(socket, seen, requests++);
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as { port: number }).port;
  return state;
}

function connection(port: number, timeout = 2000): UpstreamConnection {
  return new UpstreamConnection('127.0.0.1', port, `127.0.0.1:${port}`, { idleTimeout: 4000, timeout });
}

const GET: UpstreamRequest = { method: 'GET', path: '/', headers: ['host', 'example.test'], body: false };

/** Sends one request and collects what the handler hears; `body` is written to the sink. */
function send(
  conn: UpstreamConnection,
  request: UpstreamRequest = GET,
  options: { body?: string[]; pauseFirst?: number } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { body: '', complete: false };
    let resume: (() => void) | undefined;
    let pauses = options.pauseFirst ?? 0;
    const sink: BodySink | undefined = conn.dispatch(request, {
      onConnect() {},
      onHeaders(status, raw, r, reason) {
        out.status = status;
        out.raw = raw;
        out.reason = reason;
        resume = r;
        return true;
      },
      onData(chunk) {
        out.body += chunk.toString('latin1');
        if (pauses-- > 0) {
          setTimeout(() => resume?.(), 20);
          return false;
        }
        return true;
      },
      onComplete() {
        out.complete = true;
        resolve(out);
      },
      onError(err) {
        out.error = (err as NodeJS.ErrnoException).code;
        resolve(out);
      },
    });
    if (sink && options.body) {
      for (const piece of options.body) sink.write(Buffer.from(piece));
      sink.end();
    }
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('upstream connection: framing', () => {
  test('Content-Length answers, reused on one socket; Host kept, HEAD and 204/304 carry no body', async () => {
    const srv = await rawServer((socket, seen, n) => {
      const last = seen.split('\r\n\r\n')[n]!;
      if (last.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n');
      else if (last.includes('/204')) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (last.includes('/304')) socket.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n');
      else socket.write(`HTTP/1.1 200 Fine\r\nContent-Length: 5\r\nX-N: ${n}\r\n\r\nhello`);
    });
    const conn = connection(srv.port);
    const a = await send(conn);
    assert.deepEqual([a.status, a.reason, a.body, a.complete], [200, 'Fine', 'hello', true]);
    assert.deepEqual(a.raw, ['Content-Length', '5', 'X-N', '0']);
    const head = await send(conn, { ...GET, method: 'HEAD' });
    assert.deepEqual([head.status, head.body, head.complete], [200, '', true]);
    const noContent = await send(conn, { ...GET, path: '/204' });
    assert.deepEqual([noContent.status, noContent.body], [204, '']);
    const notModified = await send(conn, { ...GET, path: '/304' });
    assert.deepEqual([notModified.status, notModified.body], [304, '']);
    const b = await send(conn);
    assert.deepEqual(
      [b.body, b.raw?.[3]],
      ['hello', '4'],
      'the responses after HEAD/204/304 are framed right',
    );
    assert.equal(srv.connections, 1, 'one socket carried all five');
    assert.equal(conn.served, 5);
    assert.match(srv.received[0]!, /^GET \/ HTTP\/1\.1\r\nhost: example\.test\r\n\r\n/);
    conn.destroy();
  });

  test('chunked with extensions and trailers, 1xx skipped, split across many writes', async () => {
    const srv = await rawServer((socket) => {
      const bytes =
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5;name=value\r\nhello\r\n1 ; x\r\n,\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n';
      // One byte at a time: every state must survive a split.
      let i = 0;
      const next = () => {
        if (i < bytes.length) socket.write(bytes[i++]!, 'latin1', next);
      };
      next();
    });
    const conn = connection(srv.port);
    const out = await send(conn);
    assert.deepEqual([out.status, out.body, out.complete], [200, 'hello, world', true]);
    assert.equal(conn.served, 1, 'kept for reuse');
    const again = await send(conn);
    assert.equal(again.body, 'hello, world');
    assert.equal(srv.connections, 1);
    conn.destroy();
  });

  test('a close-delimited body ends with the connection, which is not reused', async () => {
    const srv = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n\r\nuntil ');
      setTimeout(() => socket.end('close'), 30);
    });
    const conn = connection(srv.port);
    const out = await send(conn);
    assert.deepEqual([out.body, out.complete, conn.served], ['until close', true, 0]);
    await send(conn);
    assert.equal(srv.connections, 2);
    conn.destroy();
  });

  test('backpressure: a paused response resumes where it stopped', async () => {
    const body = 'x'.repeat(200_000);
    const srv = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
      socket.write(body.slice(0, 100_000));
      setTimeout(() => socket.write(body.slice(100_000)), 10);
    });
    const conn = connection(srv.port);
    const out = await send(conn, GET, { pauseFirst: 3 });
    assert.equal(out.body.length, body.length);
    assert.equal(conn.served, 1);
    conn.destroy();
  });
  test('body chunks kept by the handler stay intact while later reads arrive (reads are copied out)', async () => {
    // Every byte differs from its neighbours, so a chunk overwritten by a later read cannot pass.
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 8)) & 0xff;
    const srv = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
      for (let k = 0; k < 6; k++)
        setTimeout(() => socket.write(body.subarray(k * 50_000, (k + 1) * 50_000)), k * 5);
    });
    const conn = connection(srv.port);
    const kept: Buffer[] = [];
    const done = await new Promise<string>((resolve) => {
      conn.dispatch(GET, {
        onConnect() {},
        onHeaders: () => true,
        onData(chunk) {
          kept.push(chunk);
          return true;
        },
        onComplete: () => resolve('complete'),
        onError: (err) => resolve(String(err)),
      });
    });
    assert.equal(done, 'complete');
    assert.ok(kept.length > 1, 'the body came in several reads');
    assert.ok(Buffer.concat(kept).equals(body));
    conn.destroy();
  });
});

describe('upstream connection: keep-alive rules', () => {
  test('Connection: close, HTTP/1.0 and Keep-Alive: timeout=1 are not reused; timeout=3 is, for 2 s', async () => {
    const answers = [
      'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na',
      'HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb',
      'HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 1\r\n\r\nc',
      'HTTP/1.1 200 OK\r\nKeep-Alive: max=5, timeout=3\r\ncontent-length: 1\r\n\r\nd',
      'HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\ne',
    ];
    let next = 0;
    const srv = await rawServer((socket) => socket.write(answers[next++]!));
    const conn = connection(srv.port);
    for (const expected of [0, 0, 0, 1, 2]) {
      await send(conn);
      assert.equal(conn.served, expected);
    }
    assert.equal(srv.connections, 4, 'close, 1.0 and timeout=1 each cost a new socket; timeout=3 was reused');
    conn.destroy();
  });

  test('bytes nobody asked for drop the socket: after an answer, or later on an idle one', async () => {
    let n = 0;
    const srv = await rawServer((socket) => {
      n++;
      if (n === 1)
        socket.write(
          'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil',
        );
      else if (n === 2) {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil'), 30);
      } else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ngood');
    });
    const conn = connection(srv.port);
    const first = await send(conn);
    assert.deepEqual([first.body, conn.served], ['ok', 0], 'the answer is whole; its socket is not kept');
    const second = await send(conn);
    assert.equal(second.body, 'ok');
    assert.equal(conn.served, 1);
    await sleep(100);
    assert.equal(conn.served, 0, 'unsolicited bytes on the idle socket closed it');
    const third = await send(conn);
    assert.equal(third.body, 'good', 'never the injected answer');
    assert.equal(srv.connections, 3);
    conn.destroy();
  });
});

describe('upstream connection: refused answers', () => {
  const cases: [string, string][] = [
    ['differing Content-Length', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc'],
    ['Content-Length list', 'HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nab'],
    ['negative Content-Length', 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n'],
    [
      'Content-Length beside chunked',
      'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['a coding other than chunked', 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxx'],
    [
      'chunked twice',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 0\r\n\r\n'],
    ['space before the colon', 'HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n'],
    ['NUL in a value', 'HTTP/1.1 200 OK\r\nx-a: a\0b\r\ncontent-length: 0\r\n\r\n'],
    ['bare LF in the head', 'HTTP/1.1 200 OK\r\nx-a: 1\ncontent-length: 0\r\n\r\n'],
    ['bad status line', 'HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n'],
    ['HTTP/2 status line', 'HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n'],
    ['101 nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n'],
    [
      'chunk data longer than its size',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n',
    ],
    ['bare LF after a chunk size', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'],
    ['a head over 16 KiB', `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(17_000)}\r\n\r\n`],
  ];
  for (const [name, answer] of cases) {
    test(`${name}: UPSTREAM_BAD_RESPONSE, and the socket is closed`, async () => {
      const srv = await rawServer((socket) => socket.write(answer));
      const conn = connection(srv.port);
      const out = await send(conn);
      assert.equal(out.error, 'UPSTREAM_BAD_RESPONSE', `${name}: ${JSON.stringify(out)}`);
      assert.equal(conn.served, 0);
      conn.destroy();
    });
  }
});

describe('upstream connection: failures and timeouts', () => {
  test('refused, closed before answering, cut mid-answer', async () => {
    const dead = await rawServer(() => {});
    const port = dead.port;
    servers.pop()!.close();
    await sleep(20);
    assert.equal((await send(connection(port))).error, 'ECONNREFUSED');

    const hangUp = await rawServer((socket) => socket.end());
    assert.equal((await send(connection(hangUp.port))).error, 'UPSTREAM_CLOSED');

    const cut = await rawServer((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
    const out = await send(connection(cut.port));
    assert.deepEqual([out.status, out.body, out.error], [200, 'abc', 'UPSTREAM_TRUNCATED']);
  });

  test('no headers in time: UPSTREAM_HEADERS_TIMEOUT; a stalled body: UPSTREAM_BODY_TIMEOUT', async () => {
    const silent = await rawServer(() => {});
    const started = performance.now();
    const quiet = await send(connection(silent.port, 150));
    assert.equal(quiet.error, 'UPSTREAM_HEADERS_TIMEOUT');
    assert.ok(performance.now() - started >= 140);

    const stall = await rawServer((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab'),
    );
    const out = await send(connection(stall.port, 150));
    assert.deepEqual([out.status, out.body, out.error], [200, 'ab', 'UPSTREAM_BODY_TIMEOUT']);
  });

  test('a request that cannot be written is refused before any byte leaves', async () => {
    const srv = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    const conn = connection(srv.port);
    const out = await send(conn, { ...GET, headers: ['x-a', 'one\r\nx-injected: two'] });
    assert.equal(out.error, 'UPSTREAM_BAD_REQUEST');
    const target = await send(conn, { ...GET, path: '/a b' });
    assert.equal(target.error, 'UPSTREAM_BAD_REQUEST');
    await sleep(30);
    assert.equal(srv.connections, 0);
    assert.equal((await send(conn)).status, 200, 'the connection is still usable');
  });

  test('an abort ends the attempt with onError and closes the socket', async () => {
    const srv = await rawServer(() => {});
    const conn = connection(srv.port);
    const err = await new Promise<string | undefined>((resolve) => {
      conn.dispatch(GET, {
        onConnect(abort) {
          setTimeout(abort, 20);
        },
        onHeaders: () => true,
        onData: () => true,
        onComplete: () => resolve('complete'),
        onError: (e) => resolve((e as NodeJS.ErrnoException).code),
      });
    });
    assert.equal(err, 'UPSTREAM_ABORTED');
    assert.equal(conn.busy, false);
  });
});

describe('upstream connection: request bodies', () => {
  const ok = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

  test('without Content-Length the body goes chunked; with it, as is; POST without a body says 0', async () => {
    const srv = await rawServer((socket, seen, n) => {
      // Answer once the request is whole: a chunked body ends with 0 CRLF CRLF, a sized one by its length.
      const wait = () => {
        const text = srv.received[0]!;
        if (n === 0 && !text.includes('0\r\n\r\n')) return void setTimeout(wait, 5);
        socket.write(ok);
      };
      void seen;
      wait();
    });
    const conn = connection(srv.port);
    await send(
      conn,
      { method: 'POST', path: '/c', headers: ['host', 'h'], body: true },
      { body: ['ab', 'cde'] },
    );
    await send(
      conn,
      { method: 'POST', path: '/l', headers: ['host', 'h', 'Content-Length', '3'], body: true },
      {
        body: ['x', 'yz'],
      },
    );
    await send(conn, { method: 'POST', path: '/e', headers: ['host', 'h'], body: false });
    const text = srv.received[0]!;
    assert.match(
      text,
      /^POST \/c HTTP\/1\.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n/,
    );
    assert.match(text, /POST \/l HTTP\/1\.1\r\nhost: h\r\ncontent-length: 3\r\n\r\nxyzPOST/);
    assert.match(text, /POST \/e HTTP\/1\.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n$/);
  });

  test('Host is added when the request has none', async () => {
    const srv = await rawServer((socket) => socket.write(ok));
    const conn = connection(srv.port);
    await send(conn, { method: 'GET', path: '/', headers: [], body: false });
    assert.match(
      srv.received[0]!,
      new RegExp(`^GET / HTTP/1\\.1\\r\\nhost: 127\\.0\\.0\\.1:${srv.port}\\r\\n\\r\\n$`),
    );
  });

  test('a body longer or shorter than its Content-Length fails the attempt: UPSTREAM_REQUEST_LENGTH', async () => {
    const srv = await rawServer(() => {});
    for (const body of [['abcd'], ['a']]) {
      const conn = connection(srv.port);
      const out = await send(
        conn,
        { method: 'PUT', path: '/', headers: ['content-length', '2'], body: true },
        { body },
      );
      assert.equal(out.error, 'UPSTREAM_REQUEST_LENGTH');
    }
  });

  test('an answer before the whole body was sent is passed on, and the socket is not reused', async () => {
    const srv = await rawServer((socket) => socket.write(ok));
    const conn = connection(srv.port);
    const out = await new Promise<Outcome>((resolve) => {
      const o: Outcome = { body: '', complete: false };
      const sink = conn.dispatch(
        { method: 'POST', path: '/', headers: [], body: true },
        {
          onConnect() {},
          onHeaders: (s) => {
            o.status = s;
            return true;
          },
          onData: (c) => {
            o.body += c;
            return true;
          },
          onComplete: () => {
            o.complete = true;
            resolve(o);
          },
          onError: (e) => resolve({ ...o, error: (e as NodeJS.ErrnoException).code }),
        },
      );
      sink?.write(Buffer.from('first part'));
    });
    assert.deepEqual([out.status, out.body, out.complete], [200, 'ok', true]);
    assert.equal(conn.served, 0, 'the clone may still be reading the rest of that body');
  });
});
