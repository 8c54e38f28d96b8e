import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import {
  fetchText,
  sleep,
  startBalancer,
  startUpstream,
  startWebSocketUpstream,
  webSocketUpgrade,
} from './helpers.ts';

describe('balancer: draining', () => {
  test('no request fails while a target is drained under load, and it gets no new requests', async () => {
    const ups = await Promise.all(['a', 'b', 'c'].map((id) => startUpstream(id)));
    const { lb, url } = await startBalancer({ targets: ups.map((u) => ({ id: u.id, url: u.url })) });
    try {
      let stop = false;
      const failures: string[] = [];
      const worker = async () => {
        while (!stop) {
          const res = await fetchText(`${url}/slow?ms=20`).catch((e) => ({ status: 0, body: String(e) }));
          if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      await sleep(200);
      const removing = lb.removeTarget('b');
      const seenAtDrain =
        ups[1]!.seen.length + (lb.state().targets.find((t) => t.id === 'b')!.inFlight as number);
      await removing;
      await sleep(200);
      stop = true;
      await Promise.all(workers);
      assert.deepEqual(failures, []);
      assert.ok(ups[1]!.seen.length <= (seenAtDrain as number), 'no new request after the drain began');
      assert.deepEqual(
        lb
          .state()
          .targets.map((t) => t.id)
          .sort(),
        ['a', 'c'],
      );
    } finally {
      await lb.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('in-flight requests finish before the drain resolves', async () => {
    const up = await startUpstream('a');
    const { lb, url } = await startBalancer({ targets: [{ id: 'a', url: up.url }] });
    try {
      const slow = fetchText(`${url}/slow?ms=400`);
      await sleep(50);
      const started = Date.now();
      await lb.drain('a', { deadline: 5000 });
      assert.ok(Date.now() - started >= 300, 'waited for the in-flight request');
      assert.equal((await slow).status, 200);
      assert.equal((await fetchText(`${url}/`)).status, 503, 'a drained target gets nothing new');
    } finally {
      await lb.close();
      await up.close();
    }
  });

  test('WebSockets are closed with 1012 at the drain deadline', async () => {
    const ws = await startWebSocketUpstream('ws');
    const { lb, port } = await startBalancer({ targets: [{ id: 'ws', url: ws.url }] });
    try {
      const socket = connect(port, '127.0.0.1');
      const received: Buffer[] = [];
      const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
      socket.on('data', (d) => received.push(d));
      socket.write(webSocketUpgrade());
      await sleep(100);
      const started = Date.now();
      await lb.drain('ws', { deadline: 300 });
      const closedAt = await closed;
      assert.ok(closedAt - started >= 250, 'kept open until the deadline');
      const all = Buffer.concat(received);
      assert.deepEqual([...all.subarray(all.length - 4)], [0x88, 0x02, 0x03, 0xf4], 'close frame 1012');
    } finally {
      await lb.close();
      await ws.close();
    }
  });

  test('a frame the clone is half-way through at the deadline is finished before the close frame', async () => {
    const payload = Buffer.alloc(1000, 0x62);
    const ws = await startWebSocketUpstream('ws', (socket) => {
      // A binary frame of 1,000 bytes: header and half the payload now, the rest after the drain deadline.
      socket.write(Buffer.concat([Buffer.from([0x82, 126, 0x03, 0xe8]), payload.subarray(0, 500)]));
      setTimeout(() => socket.write(payload.subarray(500)), 500);
    });
    const { lb, port } = await startBalancer({ targets: [{ id: 'ws', url: ws.url }] });
    try {
      const socket = connect(port, '127.0.0.1');
      const received: Buffer[] = [];
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('data', (d) => received.push(d));
      socket.write(webSocketUpgrade());
      await sleep(100);
      await lb.drain('ws', { deadline: 200 });
      await closed;
      const all = Buffer.concat(received);
      const frames = all.subarray(all.indexOf('\r\n\r\n') + 4);
      assert.deepEqual([...frames.subarray(0, 4)], [0x82, 126, 0x03, 0xe8]);
      assert.ok(frames.subarray(4, 1004).equals(payload), 'the whole frame, intact');
      assert.deepEqual([...frames.subarray(1004)], [0x88, 0x02, 0x03, 0xf4], 'then the close frame, alone');
    } finally {
      await lb.close();
      await ws.close();
    }
  });
});
