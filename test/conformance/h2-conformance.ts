// The HTTP/2 behaviours of the balancer contract, once, for every engine (docs/balancer.md, "Engines").
import assert from 'node:assert/strict';
import { constants, connect as h2connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { frame, hpackLiterals, INDEXED_STATUS, RawH2 } from '../balancer/fixtures/raw-h2.ts';
import { type Running, startBalancer, startUpstream, type Upstream } from '../balancer/helpers.ts';
import { makeTestPki, type TestPki } from '../harness/tls-certs.ts';
import type { Behaviour, EngineUnderTest } from './balancer-conformance.ts';

/**
 * HTTP/2 conformance: ALPN h2 to clients, its limits, its hygiene and the rapid-reset bound, on one engine.
 *
 * @example
 *   h2Conformance({ engine: 'haproxy' });
 */
export function h2Conformance(under: EngineUnderTest): void {
  const skip = (b: Behaviour) => under.skip?.[b] ?? false;
  describe(`HTTP/2 conformance: ${under.engine}`, () => {
    let pki: TestPki;
    let up: Upstream;
    let lb: Running;
    before(async () => {
      pki = makeTestPki();
      up = await startUpstream('c1', (req, res, body) => {
        if (req.url === '/hop') {
          // Connection-specific fields from a clone must not reach an HTTP/2 client.
          res.writeHead(200, { connection: 'close', 'keep-alive': 'timeout=5', 'x-ok': '1' });
          return void res.end('hop');
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers, body }));
      });
      const leaf = pki.leaf('site', ['localhost']);
      lb = await startBalancer({
        engine: under.engine,
        targets: [{ id: 'c1', url: up.url }],
        tls: { cert: leaf.fullchainFile, key: leaf.keyFile },
        http2: { maxResets: 50 },
      });
    });
    after(async () => {
      await lb.lb.close();
      await up.close();
    });

    /** One request through node's http2 client. */
    function h2get(
      client: ReturnType<typeof h2connect>,
      headers: Record<string, string>,
      body?: string,
    ): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
      return new Promise((resolve, reject) => {
        const req = client.request(headers, { endStream: body === undefined });
        let text = '';
        let response: Record<string, unknown> = {};
        req.on('response', (h) => {
          response = h;
        });
        req.on('data', (c) => {
          text += c;
        });
        req.on('end', () => resolve({ status: Number(response[':status']), headers: response, body: text }));
        req.on('error', reject);
        if (body !== undefined) req.end(body);
      });
    }

    /**
     * Sends one request on stream 1 and reports how the balancer answered it: `status N` (a response HEADERS
     * whose first field is an indexed :status), `rst N` (RST_STREAM with that code) or `goaway N`.
     */
    async function rawH2(headers: [string, string][], data?: Buffer): Promise<string> {
      const END_STREAM = 0x1;
      const END_HEADERS = 0x4;
      const raw = await RawH2.open(lb.port, pki.ca);
      try {
        raw.send(frame(0x1, END_HEADERS | (data ? 0 : END_STREAM), 1, hpackLiterals(headers)));
        if (data) raw.send(frame(0x0, END_STREAM, 1, data));
        const answer = await raw.waitFor(
          (f) => ((f.type === 0x1 || f.type === 0x3) && f.stream === 1) || f.type === 0x7,
        );
        if (answer === undefined) return 'timeout';
        if (answer.type === 0x1)
          return `status ${INDEXED_STATUS[answer.payload[0]!] ?? `0x${answer.payload[0]!.toString(16)}`}`;
        if (answer.type === 0x3) return `rst ${answer.payload.readUInt32BE(0)}`;
        return `goaway ${answer.payload.readUInt32BE(4)}`;
      } finally {
        raw.close();
      }
    }

    const BASE: [string, string][] = [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'localhost'],
      [':path', '/raw'],
    ];

    describe('HTTP/2 to clients', () => {
      test('node http2 client: GET and POST (no content-length) reach the clone over HTTP/1.1 with Host from :authority', async () => {
        const client = h2connect(`https://localhost:${lb.port}`, { ca: pki.ca });
        try {
          const get = await h2get(client, { ':path': '/a?b=1' });
          assert.equal(get.status, 200);
          const seen = JSON.parse(get.body);
          assert.equal(seen.url, '/a?b=1');
          assert.equal(seen.headers.host, `localhost:${lb.port}`);
          assert.equal(seen.headers['x-forwarded-proto'], 'https');
          const body = 'x'.repeat(100_000);
          const post = await h2get(client, { ':method': 'POST', ':path': '/up' }, body);
          assert.equal(post.status, 200);
          assert.equal(JSON.parse(post.body).body.length, body.length);
          // Many streams at once on one connection.
          const many = await Promise.all(
            Array.from({ length: 50 }, (_, i) => h2get(client, { ':path': `/m${i}` })),
          );
          assert.ok(many.every((r, i) => r.status === 200 && JSON.parse(r.body).url === `/m${i}`));
          const hop = await h2get(client, { ':path': '/hop' });
          assert.equal(hop.status, 200);
          assert.equal(hop.body, 'hop');
          assert.equal(hop.headers['x-ok'], '1');
          assert.equal(hop.headers.connection, undefined);
        } finally {
          client.close();
        }
      });

      test('the h2 session advertises the stream and window limits', async () => {
        const client = h2connect(`https://localhost:${lb.port}`, { ca: pki.ca });
        try {
          const settings = await new Promise<import('node:http2').Settings>((resolve) =>
            client.once('remoteSettings', resolve),
          );
          assert.equal(settings.maxConcurrentStreams, 100);
          assert.equal(settings.initialWindowSize, 65_535);
          if (!skip('h2OtherSettings')) {
            assert.equal(settings.maxHeaderListSize, 16 * 1024);
            assert.equal(settings.enablePush, false);
          }
        } finally {
          client.close();
        }
      });

      test('HTTP/2 hygiene: connection-specific fields, TE other than trailers, wrong content-length never reach a clone', async () => {
        const before = up.seen.length;
        assert.equal(await rawH2(BASE), 'status 200', 'the raw client itself works');
        assert.equal(up.seen.length, before + 1);
        const cases: [string, [string, string][], Buffer?][] = [
          ['connection', [...BASE, ['connection', 'keep-alive']]],
          ['keep-alive', [...BASE, ['keep-alive', 'timeout=5']]],
          ['proxy-connection', [...BASE, ['proxy-connection', 'keep-alive']]],
          ['transfer-encoding', [...BASE, ['transfer-encoding', 'chunked']]],
          ['upgrade', [...BASE, ['upgrade', 'websocket']]],
          ['te: gzip', [...BASE, ['te', 'gzip']]],
          [
            'content-length larger than DATA',
            [...BASE.slice(0, 3), [':path', '/p'], ['content-length', '10']],
            Buffer.from('abc'),
          ],
          [
            'content-length smaller than DATA',
            [...BASE.slice(0, 3), [':path', '/p'], ['content-length', '1']],
            Buffer.from('abc'),
          ],
          ['uppercase field name', [...BASE, ['X-Upper', '1']]],
          [
            'bad Host',
            [
              [':method', 'GET'],
              [':scheme', 'https'],
              [':authority', 'evil.example/../x@y'],
              [':path', '/'],
            ],
          ],
        ];
        if (!skip('h2LengthWithoutData'))
          cases.push(['content-length without DATA', [...BASE, ['content-length', '5']]]);
        for (const [name, headers, data] of cases) {
          const answer = await rawH2(headers, data);
          await sleep(50);
          // Malformed streams are reset with PROTOCOL_ERROR (1); what HTTP/1.1 hygiene also covers is answered 400.
          assert.match(answer, /^(rst 1|status 400)$/, `${name}: ${answer}`);
        }
        assert.equal(up.seen.length, before + 1, 'no refused request reached the clone');
        assert.equal(await rawH2(BASE), 'status 200', 'still serving');
      });

      test('a request refused by request hygiene ends its own stream only: the session and its other streams go on', async () => {
        const client = h2connect(`https://localhost:${lb.port}`, { ca: pki.ca });
        client.on('error', () => {});
        try {
          const before = up.seen.length;
          // Userinfo in the authority: an invalid Host (RFC 9112 §3.2), refused by request hygiene.
          const [bad, beside] = await Promise.all([
            h2get(client, { ':path': '/x', ':authority': 'u@localhost' }),
            h2get(client, { ':path': '/beside' }),
          ]);
          assert.equal(bad.status, 400);
          assert.equal(JSON.parse(bad.body).error.code, 'CLONES_BALANCER_BAD_REQUEST');
          assert.equal(beside.status, 200);
          const after = await h2get(client, { ':path': '/after-refusal' });
          assert.equal(after.status, 200, 'the same session serves the next request');
          assert.equal(client.closed || client.destroyed, false);
          assert.deepEqual(
            up.seen
              .slice(before)
              .map((r) => r.url)
              .sort(),
            ['/after-refusal', '/beside'],
            'the refused request never reached the clone',
          );
        } finally {
          client.close();
        }
      });

      test('split Cookie fields reach the clone as one line; a Host naming another authority is refused', async (t) => {
        const client = h2connect(`https://localhost:${lb.port}`, { ca: pki.ca });
        client.on('error', () => {});
        try {
          // node's client sends an array as one field per value, as browsers split cookies (RFC 9113 §8.2.3).
          const res = await h2get(client, { ':path': '/cookies', cookie: ['a=1', 'b=2'] } as never);
          assert.equal(res.status, 200);
          assert.equal(JSON.parse(res.body).headers.cookie, 'a=1; b=2');
          if (skip('h2HostAuthority')) return t.skip(String(skip('h2HostAuthority')));
          const before = up.seen.length;
          const other = await rawH2([...BASE, ['host', 'other.example']]);
          assert.match(other, /^(rst 1|status 400)$/);
          assert.equal(
            await rawH2([...BASE, ['host', 'LOCALHOST']]),
            'status 200',
            'the same authority in other case',
          );
          assert.equal(up.seen.length, before + 1);
        } finally {
          client.close();
        }
      });

      /** Opens up to 1,000 streams and cancels each at once; resolves with the GOAWAY code (or -1) and how many reached the clone. */
      const rapidReset = async (): Promise<{ code: number; reached: number; opened: number }> => {
        const before = up.seen.length;
        const client = h2connect(`https://localhost:${lb.port}`, { ca: pki.ca });
        client.on('error', () => {});
        const goaway = new Promise<number>((resolve) => client.once('goaway', (code) => resolve(code)));
        await new Promise<void>((resolve) => client.once('connect', () => resolve()));
        let opened = 0;
        for (let i = 0; i < 1000 && !client.destroyed && !client.closed; i++) {
          const req = client.request({ ':path': `/reset${i}` });
          req.on('error', () => {});
          req.close(constants.NGHTTP2_CANCEL);
          opened++;
          if (i % 50 === 49) await sleep(1);
        }
        const code = await Promise.race([goaway, sleep(5000).then(() => -1)]);
        client.destroy();
        await sleep(300);
        return { code, reached: up.seen.length - before, opened };
      };

      test('rapid reset (CVE-2023-44487): streams opened and cancelled at once end in GOAWAY(ENHANCE_YOUR_CALM), bounded work', async (t) => {
        if (skip('h2ResetGoaway')) return t.skip(String(skip('h2ResetGoaway')));
        const { code, reached, opened } = await rapidReset();
        assert.equal(code, constants.NGHTTP2_ENHANCE_YOUR_CALM);
        // maxResets (50) plus at most the streams in flight when the limit was crossed (maxConcurrentStreams 100).
        assert.ok(reached <= 150, `${reached} of ${opened} cancelled requests reached the clone`);
      });

      test('rapid reset: while one client opens and cancels streams, other clients are served', async () => {
        const attack = rapidReset();
        const other = h2connect(`https://localhost:${lb.port}`, { ca: pki.ca });
        try {
          for (let i = 0; i < 5; i++)
            assert.equal((await h2get(other, { ':path': `/during${i}` })).status, 200);
          await attack;
          assert.equal((await h2get(other, { ':path': '/after' })).status, 200);
        } finally {
          other.close();
        }
      });
    });
  });
}
