import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server } from 'node:tls';
import type { H2ProtocolError } from '../../src/balancer/h2/h2-error.ts';
import { type H2Limits, H2Session } from '../../src/balancer/h2/h2-session.ts';
import type { H2Stream } from '../../src/balancer/h2/h2-stream.ts';
import { makeTestPki, type TestPki } from '../harness/tls-certs.ts';
import { frame, hpackLiterals, RawH2 } from './fixtures/raw-h2.ts';

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

/** A body whose every byte depends on its position, so a lost or reordered piece shows. */
function pattern(size: number): Buffer {
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + (i >>> 8)) & 0xff;
  return buf;
}

const BIG = pattern(1024 * 1024);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The value of a field in a decoded list. */
function field(fields: string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** Answers by :path, as a small application on the session would. */
function serve(stream: H2Stream, fields: string[], oversize: boolean): void {
  if (oversize) {
    stream.respond(431, ['content-length', '0']);
    stream.end();
    return;
  }
  const path = field(fields, ':path');
  if (path === '/big') {
    stream.respond(200, ['content-length', String(BIG.length)]);
    let at = 0;
    const more = (): void => {
      while (at < BIG.length) {
        const piece = BIG.subarray(at, at + 64 * 1024);
        at += piece.length;
        if (at >= BIG.length) return void stream.end(piece);
        if (!stream.write(piece)) return void stream.once('drain', more);
      }
    };
    return void more();
  }
  if (path === '/headers') {
    const big = ['x-a', 'a'.repeat(10_000), 'x-b', 'b'.repeat(10_000), 'x-c', 'c'.repeat(10_000)];
    stream.respond(200, big);
    return void stream.end(Buffer.from('ok'));
  }
  if (path === '/echo') {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      stream.respond(200, ['x-length', String(body.length)]);
      stream.end(Buffer.from(sha(body)));
    });
    return;
  }
  if (path === '/hold') return; // never answers
  if (path === '/throw') throw new Error('a bug in the handler');
  stream.respond(200, []);
  stream.end(Buffer.from('ok'));
}

describe('H2Session: the balancer’s HTTP/2 server side', () => {
  let pki: TestPki;
  let server: Server;
  let port: number;
  const errors: H2ProtocolError[] = [];
  let abuse = 0;
  const limits: H2Limits = {
    maxConcurrentStreams: 5,
    initialWindowSize: 65_535,
    maxHeaderListSize: 16 * 1024,
    maxResets: 20,
    resetWindow: 10_000,
    maxUnread: 1024 * 1024,
    idleTimeout: 800,
  };
  before(async () => {
    pki = makeTestPki();
    const leaf = pki.leaf('site', ['localhost']);
    server = createServer(
      { cert: readFileSync(leaf.fullchainFile), key: readFileSync(leaf.keyFile), ALPNProtocols: ['h2'] },
      (socket) => {
        const hooks = {
          onAbuse: () => abuse++,
          onError: (_s: H2Session, err: H2ProtocolError) => errors.push(err),
          onClose: () => {},
        };
        new H2Session(socket, limits, hooks, serve);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = (settings = {}): ClientHttp2Session => {
    const c = connect(`https://localhost:${port}`, { ca: pki.ca, settings });
    c.on('error', () => {});
    return c;
  };

  function request(
    c: ClientHttp2Session,
    headers: Record<string, string>,
    body?: Buffer,
    trailers?: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = c.request(headers, {
        endStream: body === undefined,
        waitForTrailers: trailers !== undefined,
      });
      const chunks: Buffer[] = [];
      let head: Record<string, unknown> = {};
      req.on('response', (h) => {
        head = h;
      });
      req.on('wantTrailers', () => req.sendTrailers(trailers!));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }),
      );
      req.on('error', reject);
      if (body !== undefined) req.end(body);
    });
  }

  test('a 1 MB answer keeps to a 16 KB client window and arrives whole', async () => {
    const c = client({ initialWindowSize: 16_384 });
    try {
      const res = await request(c, { ':path': '/big' });
      assert.equal(res.status, 200);
      assert.equal(res.body.length, BIG.length);
      assert.ok(res.body.equals(BIG), 'every byte in order');
    } finally {
      c.close();
    }
  });

  test('a client window of 0 holds the answer back; a larger SETTINGS_INITIAL_WINDOW_SIZE lets it go, to the window', async () => {
    const raw = await RawH2.open(port, pki.ca);
    try {
      const settings = (window: number): Buffer => {
        const payload = Buffer.alloc(6);
        payload.writeUInt16BE(0x4, 0);
        payload.writeUInt32BE(window, 2);
        return frame(SETTINGS, 0, 0, payload);
      };
      raw.send(
        settings(0),
        frame(HEADERS, END_STREAM | END_HEADERS, 1, hpackLiterals([...GET.slice(0, 3), [':path', '/big']])),
      );
      assert.ok(
        await raw.waitFor((f) => f.type === HEADERS && f.stream === 1),
        'the headers are not flow-controlled',
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const sent = (): number =>
        raw.frames.filter((f) => f.type === DATA && f.stream === 1).reduce((n, f) => n + f.payload.length, 0);
      assert.equal(sent(), 0, 'no DATA while the stream window is 0');
      raw.send(settings(40_000));
      await raw.waitFor(() => sent() >= 40_000, 2000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(sent(), 40_000, 'exactly the new window, no more');
    } finally {
      raw.close();
    }
  });

  test('a 3 MB upload crosses the connection window several times and is read whole', async () => {
    const c = client();
    try {
      const body = Buffer.concat([BIG, BIG, BIG]);
      const res = await request(c, { ':method': 'POST', ':path': '/echo' }, body);
      assert.equal(res.headers['x-length'], String(body.length));
      assert.equal(res.body.toString(), sha(body));
    } finally {
      c.close();
    }
  });

  test('request trailers end the body; a header block over one frame goes out with CONTINUATION', async () => {
    const c = client();
    try {
      const up = await request(c, { ':method': 'POST', ':path': '/echo' }, Buffer.from('abc'), {
        'x-sum': '1',
      });
      assert.equal(up.headers['x-length'], '3');
      const big = await request(c, { ':path': '/headers' });
      assert.equal(big.status, 200);
      assert.equal(big.headers['x-a'], 'a'.repeat(10_000));
      assert.equal(big.headers['x-c'], 'c'.repeat(10_000));
      assert.equal(big.body.toString(), 'ok');
    } finally {
      c.close();
    }
  });

  test('a client that shrinks its HPACK table (SETTINGS_HEADER_TABLE_SIZE 0) still reads every answer', async () => {
    const c = client({ headerTableSize: 0 });
    try {
      await new Promise((resolve) => c.once('localSettings', resolve));
      for (let i = 0; i < 3; i++) {
        const res = await request(c, { ':path': `/t${i}` });
        assert.equal(`${res.status} ${res.body}`, '200 ok');
      }
    } finally {
      c.close();
    }
  });

  test('many streams at once on one session, each answered', async () => {
    const c = client();
    try {
      const all = await Promise.all(Array.from({ length: 40 }, (_, i) => request(c, { ':path': `/n${i}` })));
      assert.deepEqual(
        all.map((r) => `${r.status} ${r.body}`),
        all.map(() => '200 ok'),
      );
    } finally {
      c.close();
    }
  });

  const GET: [string, string][] = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':authority', 'localhost'],
    [':path', '/'],
  ];

  test('a header list over maxHeaderListSize is the stream’s 431; the session goes on', async () => {
    const raw = await RawH2.open(port, pki.ca);
    try {
      const many = [
        ...GET,
        ...Array.from({ length: 200 }, (_, i) => [`x-f${i}`, 'v'.repeat(100)] as [string, string]),
      ];
      const block = hpackLiterals(many);
      raw.send(
        frame(HEADERS, END_STREAM, 1, block.subarray(0, 16_000)),
        frame(CONTINUATION, END_HEADERS, 1, block.subarray(16_000)),
      );
      const head = await raw.waitFor((f) => f.type === HEADERS && f.stream === 1);
      // :status 431 has no static entry: a literal with the indexed name :status (0x08), then "431".
      assert.equal(head?.payload.subarray(0, 5).toString('latin1'), '\x08\x03431');
      raw.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, hpackLiterals(GET)));
      const next = await raw.waitFor((f) => f.type === HEADERS && f.stream === 3);
      assert.equal(next?.payload[0], 0x88, 'the next stream is answered 200');
    } finally {
      raw.close();
    }
  });

  test('frames that arrive a byte per TLS record are put together', async () => {
    const raw = await RawH2.open(port, pki.ca);
    try {
      raw.socket.setNoDelay(true);
      const request = frame(HEADERS, END_STREAM | END_HEADERS, 1, hpackLiterals(GET));
      for (const byte of request) {
        raw.send(Buffer.from([byte]));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const head = await raw.waitFor((f) => f.type === HEADERS && f.stream === 1);
      assert.equal(head?.payload[0], 0x88, ':status 200');
    } finally {
      raw.close();
    }
  });

  /** Sends `frames` on a fresh raw session and returns the GOAWAY error code (or -1). */
  async function goawayAfter(...frames: Buffer[]): Promise<number> {
    const raw = await RawH2.open(port, pki.ca);
    try {
      raw.send(...frames);
      const goaway = await raw.waitFor((f) => f.type === GOAWAY);
      return goaway === undefined ? -1 : goaway.payload.readUInt32BE(4);
    } finally {
      raw.close();
    }
  }

  test('floods end in GOAWAY(ENHANCE_YOUR_CALM): PING, empty DATA frames, CONTINUATION', async () => {
    const pings = Array.from({ length: 400 }, () => frame(PING, 0, 0, Buffer.alloc(8)));
    assert.equal(await goawayAfter(...pings), 0xb);
    const empty = Array.from({ length: 400 }, () => frame(DATA, 0, 1));
    assert.equal(await goawayAfter(frame(HEADERS, END_HEADERS, 1, hpackLiterals(GET)), ...empty), 0xb);
    const pieces = Array.from({ length: 100 }, () => frame(CONTINUATION, 0, 1, Buffer.from([0x00])));
    assert.equal(await goawayAfter(frame(HEADERS, 0, 1, Buffer.alloc(0)), ...pieces), 0xb);
    assert.ok(abuse >= 3);
  });

  test('protocol errors end in GOAWAY with their code', async () => {
    // A frame over our SETTINGS_MAX_FRAME_SIZE (16,384): FRAME_SIZE_ERROR.
    assert.equal(await goawayAfter(frame(DATA, 0, 1, Buffer.alloc(16_385))), 0x6);
    // An HPACK index beyond both tables: COMPRESSION_ERROR.
    assert.equal(
      await goawayAfter(frame(HEADERS, END_STREAM | END_HEADERS, 1, Buffer.from([0xff, 0x7f]))),
      0x9,
    );
    // DATA on stream 0, and on a stream never opened: PROTOCOL_ERROR.
    assert.equal(await goawayAfter(frame(DATA, 0, 0, Buffer.from('x'))), 0x1);
    assert.equal(await goawayAfter(frame(DATA, 0, 7, Buffer.from('x'))), 0x1);
    // A stream id that goes backwards.
    const get = hpackLiterals(GET);
    assert.equal(
      await goawayAfter(
        frame(HEADERS, END_STREAM | END_HEADERS, 5, get),
        frame(HEADERS, END_STREAM | END_HEADERS, 3, get),
      ),
      0x5,
    );
  });

  test('a stream beyond maxConcurrentStreams is refused (REFUSED_STREAM); DATA past its window is FLOW_CONTROL_ERROR', async () => {
    const raw = await RawH2.open(port, pki.ca);
    try {
      const hold = hpackLiterals([...GET.slice(0, 3), [':path', '/hold']]);
      for (let id = 1; id <= 11; id += 2) raw.send(frame(HEADERS, END_HEADERS, id, hold));
      const refused = await raw.waitFor((f) => f.type === RST_STREAM && f.stream === 11);
      assert.equal(refused?.payload.readUInt32BE(0), 0x7);
      // Stream 1 is never read: 65,535 bytes fill its window, one more byte breaks it.
      for (let sent = 0; sent < 65_535; sent += 16_384)
        raw.send(frame(DATA, 0, 1, Buffer.alloc(Math.min(16_384, 65_535 - sent))));
      raw.send(frame(DATA, 0, 1, Buffer.alloc(1)));
      const rst = await raw.waitFor((f) => f.type === RST_STREAM && f.stream === 1);
      assert.equal(rst?.payload.readUInt32BE(0), 0x3);
      assert.equal(
        raw.frames.some((f) => f.type === GOAWAY),
        false,
        'stream errors leave the session open',
      );
    } finally {
      raw.close();
    }
  });

  test('a handler that throws resets its own stream (INTERNAL_ERROR) and is logged; the session goes on', async () => {
    const c = client();
    try {
      const code = await new Promise<number>((resolve) => {
        const req = c.request({ ':path': '/throw' });
        req.on('error', () => {});
        req.on('close', () => resolve(req.rstCode ?? -1));
      });
      assert.equal(code, 0x2);
      assert.ok(errors.some((e) => e.message.includes('a bug in the handler')));
      assert.equal((await request(c, { ':path': '/after' })).body.toString(), 'ok');
    } finally {
      c.close();
    }
  });

  test('a session with no stream closes with GOAWAY(NO_ERROR) after the idle timeout', async () => {
    const raw = await RawH2.open(port, pki.ca);
    try {
      raw.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, hpackLiterals(GET)));
      const goaway = await raw.waitFor((f) => f.type === GOAWAY, 3000);
      assert.equal(goaway?.payload.readUInt32BE(4), 0);
      assert.equal(goaway?.payload.readUInt32BE(0), 1, 'the last stream it took');
      assert.ok(
        raw.frames.some((f) => f.type === HEADERS && f.stream === 1),
        'the request was answered first',
      );
    } finally {
      raw.close();
    }
  });
});
