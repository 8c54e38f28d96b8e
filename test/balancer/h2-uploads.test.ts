import assert from 'node:assert/strict';
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../harness/tls-certs.ts';
import { type Running, sleep, startBalancer, startUpstream, type Upstream } from './helpers.ts';

interface Outcome {
  status: number;
  body: string;
  rstCode: number;
  ms: number;
}

/** Watches one HTTP/2 request to its stream's close. */
function outcome(stream: ClientHttp2Stream): Promise<Outcome> {
  const started = Date.now();
  let status = 0;
  let body = '';
  stream.on('response', (h) => {
    status = Number(h[':status']);
  });
  stream.on('data', (c: Buffer) => {
    body += c;
  });
  stream.on('error', () => {});
  return new Promise((resolve) =>
    stream.on('close', () =>
      resolve({ status, body, rstCode: stream.rstCode ?? -1, ms: Date.now() - started }),
    ),
  );
}

function get(client: ClientHttp2Session, path: string): Promise<Outcome> {
  return outcome(client.request({ ':path': path }));
}

/** The built-in engine's HTTP/2 streams with a request body that is not read to its end. */
describe('balancer: HTTP/2 uploads', () => {
  let pki: TestPki;
  let up: Upstream;
  let lb: Running;
  let client: ClientHttp2Session;
  before(async () => {
    pki = makeTestPki();
    // /early answers at once without reading the body; anything else reads the body to its end first.
    up = await startUpstream(
      'c1',
      (req, res) => {
        if (req.url === '/early') return void res.end('early');
        req.resume();
        req.on('end', () => res.end('read'));
      },
      false,
    );
    const leaf = pki.leaf('site', ['localhost']);
    lb = await startBalancer({
      targets: [{ id: 'c1', url: up.url }],
      tls: { cert: leaf.fullchainFile, key: leaf.keyFile },
      server: { bodyTimeout: 1000, bodyMinRate: 500, bodyIdleTimeout: 800 },
    });
    client = connect(`https://localhost:${lb.port}`, { ca: pki.ca });
    client.on('error', () => {});
  });
  after(async () => {
    client.close();
    await lb.lb.close();
    await up.close();
  });

  test('an upload the clone answers before reading it: the whole answer, then RST_STREAM(NO_ERROR); the session goes on', async () => {
    const stream = client.request(
      { ':method': 'POST', ':path': '/early', 'content-length': '1000000' },
      { endStream: false },
    );
    const timer = setInterval(() => {
      if (!stream.destroyed) stream.write('x');
    }, 50);
    stream.write('x');
    const answer = await Promise.race([outcome(stream), sleep(5000).then(() => undefined)]);
    clearInterval(timer);
    assert.ok(answer, 'the stream was left open while the client kept uploading');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'early');
    assert.equal(answer.rstCode, constants.NGHTTP2_NO_ERROR);
    assert.equal((await get(client, '/next')).status, 200);
    assert.equal(client.closed || client.destroyed, false);
  });

  test('a stalled HTTP/2 upload is cut with 408 on its own stream while the session serves others', async () => {
    const stream = client.request(
      { ':method': 'POST', ':path': '/stall', 'content-length': '1000000' },
      { endStream: false },
    );
    stream.write('x');
    const stalled = outcome(stream);
    // Other streams of the same session are served while the upload hangs.
    for (let i = 0; i < 3; i++) assert.equal((await get(client, `/during-${i}`)).status, 200);
    const cut = await Promise.race([stalled, sleep(5000).then(() => undefined)]);
    assert.ok(cut, 'the stalled upload was not cut within 5 s');
    assert.equal(cut.status, 408);
    assert.equal(JSON.parse(cut.body).error.code, 'CLONES_BALANCER_BODY_TIMEOUT');
    assert.ok(cut.ms >= 700, `cut after ${cut.ms} ms, before the 800 ms idle deadline`);
    assert.equal((await get(client, '/after-cut')).status, 200);
    assert.equal(client.closed || client.destroyed, false);
  });

  test('a whole HTTP/2 upload is read by the clone and answered', async () => {
    const stream = client.request({ ':method': 'POST', ':path': '/whole' });
    const done = outcome(stream);
    stream.end('x'.repeat(200_000));
    const answer = await done;
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'read');
    assert.equal(answer.rstCode, constants.NGHTTP2_NO_ERROR);
  });
});
