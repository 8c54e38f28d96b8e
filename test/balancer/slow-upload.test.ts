import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { fetchText, sleep, startBalancer, startPair, startUpstream, waitFor } from './helpers.ts';

/** A POST that announces `length` bytes and sends one every `everyMs`; resolves with what came back. */
function slowUpload(port: number, length: number, everyMs: number, stopAfter = Number.POSITIVE_INFINITY) {
  const socket: Socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('error', () => {});
  socket.on('data', (c) => chunks.push(c));
  socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n`);
  timer = setInterval(() => {
    if (sent >= Math.min(length, stopAfter) || socket.destroyed) return;
    socket.write('a');
    sent++;
  }, everyMs);
  const done = new Promise<{ text: string; closed: boolean }>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
  });
  return {
    done,
    stop() {
      clearInterval(timer);
      timer = undefined;
      socket.destroy();
    },
  };
}

const status = (text: string) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);

describe('balancer: slow request bodies', async () => {
  const { lb, port, url } = await startPair({
    server: { bodyTimeout: 1000, bodyMinRate: 500, bodyIdleTimeout: 800 },
    upstream: { maxSockets: 8, maxUploadSockets: 4, queueTimeout: 500 },
  });

  test('30 slow uploads take no more than their share: every GET is served at once', async () => {
    const uploads = Array.from({ length: 30 }, () => slowUpload(port, 1_000_000, 100));
    await sleep(200);
    for (let i = 0; i < 20; i++) {
      const started = Date.now();
      const answer = await Promise.race([
        fetchText(`${url}/get-${i}`, { agent: false }),
        sleep(3000).then(() => undefined),
      ]);
      assert.ok(answer, `GET ${i} got no answer within 3 s while uploads were in flight`);
      assert.equal(answer.status, 200);
      // Not queued behind the uploads: far below the 500 ms queue deadline.
      assert.ok(Date.now() - started < 450, `GET ${i} waited ${Date.now() - started} ms`);
    }
    const results = await Promise.race([
      Promise.all(uploads.map((u) => u.done)),
      sleep(10_000).then(() => undefined),
    ]);
    for (const u of uploads) u.stop();
    assert.ok(results, 'the slow uploads were not cut within 10 s');
    const codes = results.map((r) => status(r.text));
    for (const [i, r] of results.entries()) {
      assert.ok(codes[i] === 408 || codes[i] === 503, `upload ${i}: ${r.text.slice(0, 200)}`);
      if (codes[i] === 408) assert.match(r.text, /CLONES_BALANCER_BODY_TIMEOUT/);
      if (codes[i] === 503) {
        assert.match(r.text, /CLONES_BALANCER_QUEUE_TIMEOUT/);
        assert.match(r.text, /\r\nretry-after: 1\r\n/i);
      }
    }
    assert.ok(codes.includes(408), 'no upload reached a clone and was cut for its rate');
    assert.ok(codes.includes(503), 'no upload waited in the queue');
    const targets = lb.state().targets as { id: string; ejected: boolean }[];
    for (const t of targets) assert.equal(t.ejected, false, `${t.id} was ejected by client faults`);
  });

  test('a body that stalls is cut with 408 and the connection closes', async () => {
    const started = Date.now();
    const u = slowUpload(port, 1000, 5, 10);
    const r = await Promise.race([u.done, sleep(5000).then(() => undefined)]);
    u.stop();
    assert.ok(r, 'the stalled upload was never cut');
    assert.equal(status(r.text), 408, r.text.slice(0, 200));
    assert.match(r.text, /stalled/);
    assert.ok(r.closed);
    assert.ok(Date.now() - started < 3000);
  });

  test('a large body sent at full speed goes through', async () => {
    const body = Buffer.alloc(1_000_000, 'x');
    const answer = await fetchText(`${url}/big`, { method: 'POST', body, agent: false });
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as { body: string }).body.length, 1_000_000);
  });
});

describe('balancer: a small body is read whole before a clone is involved', async () => {
  const a = await startUpstream('a');
  const { lb, port } = await startBalancer({
    server: { bodyTimeout: 5000 },
    upstream: { maxSockets: 1 },
    targets: [{ id: 'a', url: a.url }],
  });
  after(async () => {
    await lb.close();
    await a.close();
  });

  test('while a 20-byte body trickles in, it holds no connection to the clone', async () => {
    const u = slowUpload(port, 20, 25);
    await sleep(200);
    const inFlight = (lb.state().targets[0] as { inFlight: number }).inFlight;
    assert.equal(inFlight, 0, 'the slow small body already holds the only connection');
    assert.equal(a.connections, 0, 'the clone was connected to before the body arrived');
    await waitFor(() => a.seen.length > 0, 3000);
    u.stop();
    assert.equal(a.seen.at(-1)?.body, 'a'.repeat(20));
  });
});
