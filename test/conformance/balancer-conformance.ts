// The balancer contract, once, for every engine (docs/balancer.md, "Engines"). A behaviour an engine cannot
// have is skipped with the reason; everything else must pass on every engine.
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Balancer, type BalancerOptions, createBalancer } from '../../src/balancer/index.ts';
import {
  type CloneProcess,
  fetchText,
  rawRequest,
  silent,
  sleep,
  startCloneProcess,
  startUpstream,
  startWebSocketUpstream,
  type Upstream,
  waitFor,
  webSocketUpgrade,
} from '../balancer/helpers.ts';

/** Behaviours an engine may lack; each needs a reason. */
export type Behaviour =
  | 'panic'
  | 'wsCloseCode'
  | 'retryBudget'
  | 'exactGroupSplit'
  | 'optionsStar'
  | 'h2OtherSettings'
  | 'h2ResetGoaway'
  | 'h2HostAuthority'
  | 'h2LengthWithoutData';

export interface EngineUnderTest {
  engine: 'builtin' | 'haproxy';
  skip?: Partial<Record<Behaviour, string>>;
}

const TOKEN = 'conformance-token-0123456789';

interface Running {
  lb: Balancer;
  url: string;
  port: number;
}

const cookieOf = (setCookie: string[] | undefined, name: string): string | undefined =>
  setCookie?.find((c) => c.startsWith(`${name}=`))?.split(';')[0];

const settle = async (lb: Balancer) => {
  await lb.settled?.();
};

/**
 * Runs every balancer behaviour against one engine.
 *
 * @example
 *   balancerConformance({ engine: 'haproxy', skip: { panic: 'HAProxy has no panic mode' } });
 */
export function balancerConformance(under: EngineUnderTest): void {
  const skip = (b: Behaviour) => under.skip?.[b] ?? false;
  const start = async (options: BalancerOptions): Promise<Running> => {
    const lb = createBalancer({
      engine: under.engine,
      logger: silent,
      ...options,
      healthCheck: { enabled: false, ...options.healthCheck },
    });
    const { port } = await lb.listen(0, '127.0.0.1');
    return { lb, port, url: `http://127.0.0.1:${port}` };
  };

  describe(`balancer conformance: ${under.engine}`, () => {
    let ups: Upstream[] = [];
    const targets = () => ups.map((u) => ({ id: u.id, url: u.url, release: `r-${u.id}` }));
    before(async () => {
      ups = await Promise.all(['a', 'b', 'c'].map((id) => startUpstream(id)));
    });
    after(() => Promise.all(ups.map((u) => u.close())));

    test('proxies, tags the answer with x-clones-clone and x-clones-release, adds Via', async () => {
      const { lb, url } = await start({ targets: targets().slice(0, 1) });
      try {
        const res = await fetchText(`${url}/hello?x=1`);
        assert.equal(res.status, 200);
        assert.equal(res.headers['x-clones-clone'], 'a');
        assert.equal(res.headers['x-clones-release'], 'r-a');
        const seen = JSON.parse(res.body);
        assert.equal(seen.url, '/hello?x=1');
        assert.match(String(seen.headers.via), /clones/);
      } finally {
        await lb.close();
      }
    });

    test('algorithms: round-robin spreads evenly, power-of-two uses every clone, least-outstanding avoids the slow one', async () => {
      for (const algorithm of ['round-robin', 'power-of-two'] as const) {
        const { lb, url } = await start({ algorithm, targets: targets() });
        try {
          const counts = new Map<string, number>();
          for (let i = 0; i < 60; i++) {
            const id = (await fetchText(`${url}/`)).headers['x-clones-clone'] as string;
            counts.set(id, (counts.get(id) ?? 0) + 1);
          }
          assert.equal(counts.size, 3, `${algorithm}: ${[...counts]}`);
          if (algorithm === 'round-robin') for (const n of counts.values()) assert.equal(n, 20);
        } finally {
          await lb.close();
        }
      }
      const slow = await startUpstream('slow', (_req, res) => setTimeout(() => res.end('slow'), 300));
      const fast = ups[0]!;
      const { lb, url } = await start({
        algorithm: 'least-outstanding',
        targets: [
          { id: 'slow', url: slow.url },
          { id: 'a', url: fast.url },
        ],
      });
      try {
        const counts = new Map<string, number>();
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            for (let i = 0; i < 15; i++) {
              const id = (await fetchText(`${url}/`)).headers['x-clones-clone'] as string;
              counts.set(id, (counts.get(id) ?? 0) + 1);
            }
          }),
        );
        assert.ok((counts.get('a') ?? 0) > 2 * (counts.get('slow') ?? 0), `${[...counts]}`);
      } finally {
        await lb.close();
        await slow.close();
      }
    });

    test('X-Forwarded-* are overwritten from an untrusted peer, appended to from a trusted one', async () => {
      for (const trusted of [false, true]) {
        const { lb, url } = await start({
          trustedProxies: trusted ? ['127.0.0.0/8'] : [],
          targets: targets().slice(0, 1),
        });
        try {
          const res = await fetchText(`${url}/`, {
            headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', forwarded: 'for=x' },
          });
          const h = JSON.parse(res.body).headers;
          if (trusted) {
            assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
            assert.equal(h['x-forwarded-proto'], 'https');
          } else {
            assert.equal(h['x-forwarded-for'], '127.0.0.1');
            assert.equal(h['x-forwarded-proto'], 'http');
            assert.equal(h.forwarded, undefined);
          }
          assert.ok(h['x-forwarded-host']);
        } finally {
          await lb.close();
        }
      }
    });

    test('health: a failing /up takes a clone out, a passing one brings it back; checkNow answers', async () => {
      let healthy = true;
      const flaky = await startUpstream('flaky', (req, res) => {
        if (req.url === '/up') {
          res.statusCode = healthy ? 200 : 503;
          return void res.end();
        }
        res.end('flaky');
      });
      const { lb, url } = await start({
        algorithm: 'round-robin',
        healthCheck: {
          enabled: true,
          interval: 100,
          transitionInterval: 50,
          jitter: 0,
          unhealthyThreshold: 2,
        },
        targets: [
          { id: 'flaky', url: flaky.url },
          { id: 'a', url: ups[0]!.url },
        ],
      });
      const served = async () => {
        const ids = new Set<string>();
        for (let i = 0; i < 6; i++) ids.add((await fetchText(`${url}/`)).headers['x-clones-clone'] as string);
        return ids;
      };
      try {
        await waitFor(() => lb.state().targets.every((t) => t.health === 'healthy'), 5000);
        assert.equal(await lb.checkNow('flaky'), true);
        healthy = false;
        assert.equal(await lb.checkNow('flaky'), false);
        await waitFor(() => lb.state().targets.find((t) => t.id === 'flaky')!.health === 'unhealthy', 5000);
        await sleep(200);
        assert.deepEqual([...(await served())], ['a']);
        healthy = true;
        await waitFor(() => lb.state().targets.find((t) => t.id === 'flaky')!.health === 'healthy', 5000);
        await sleep(200);
        assert.ok((await served()).has('flaky'));
      } finally {
        await lb.close();
        await flaky.close();
      }
    });

    test('kill -9 of one of 3 clone processes under GET load: 0 failed requests, the dead clone is taken out', async () => {
      const clones: CloneProcess[] = await Promise.all(['p1', 'p2', 'p3'].map((id) => startCloneProcess(id)));
      const { lb, url } = await start({
        healthCheck: { enabled: true, interval: 200, transitionInterval: 100, jitter: 0 },
        targets: clones.map((c) => ({ id: c.id, url: c.url })),
      });
      try {
        await waitFor(() => lb.state().targets.every((t) => t.health === 'healthy'), 5000);
        let stop = false;
        const failures: string[] = [];
        let afterKill = new Set<string>();
        let killed = false;
        const worker = async () => {
          while (!stop) {
            const res = await fetchText(`${url}/slow?ms=5`).catch((e) => ({
              status: 0,
              body: String(e),
              headers: {},
            }));
            if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
            else if (killed) afterKill.add(res.body);
          }
        };
        const workers = Array.from({ length: 8 }, worker);
        await sleep(300);
        clones[1]!.kill('SIGKILL');
        killed = true;
        await sleep(1500);
        afterKill = new Set();
        await sleep(500);
        stop = true;
        await Promise.all(workers);
        assert.deepEqual(failures, []);
        assert.ok(!afterKill.has('p2'), 'the dead clone is out');
      } finally {
        await lb.close();
        for (const c of clones) c.kill();
      }
    });

    test('retries: a GET that got no answer is retried on another clone, a bare POST is not', async () => {
      const dropper = await startUpstream('drop', (req) => req.socket.destroy());
      const { lb, url } = await start({
        algorithm: 'round-robin',
        targets: [
          { id: 'drop', url: dropper.url },
          { id: 'a', url: ups[0]!.url },
        ],
      });
      try {
        for (let i = 0; i < 4; i++) assert.equal((await fetchText(`${url}/`)).status, 200);
        const statuses = new Set<number>();
        for (let i = 0; i < 6; i++)
          statuses.add((await fetchText(`${url}/`, { method: 'POST', body: 'x', agent: false })).status);
        assert.ok(statuses.has(502), `a POST that reached a dying clone is not replayed: ${[...statuses]}`);
        const keyed = await fetchText(`${url}/`, {
          method: 'POST',
          body: 'x',
          headers: { 'idempotency-key': 'k1' },
        });
        const keyed2 = await fetchText(`${url}/`, {
          method: 'POST',
          body: 'x',
          headers: { 'idempotency-key': 'k2' },
        });
        assert.deepEqual([keyed.status, keyed2.status], [200, 200]);
      } finally {
        await lb.close();
        await dropper.close();
      }
    });

    test('sticky cookie: holds the client, has its Max-Age, hidden from the clone, re-pins when the clone drains', async () => {
      const { lb, url } = await start({ sticky: { enabled: true, duration: 60_000 }, targets: targets() });
      try {
        const first = await fetchText(`${url}/`);
        const cookie = cookieOf(first.headers['set-cookie'], 'clones_sticky');
        assert.ok(cookie, 'a sticky cookie is set');
        assert.match(first.headers['set-cookie']!.join(), /Max-Age=60;?/);
        assert.match(first.headers['set-cookie']!.join(), /HttpOnly/i);
        const pinned = first.headers['x-clones-clone'] as string;
        for (let i = 0; i < 10; i++) {
          const res = await fetchText(`${url}/`, { headers: { cookie: `theme=dark; ${cookie}` } });
          assert.equal(res.headers['x-clones-clone'], pinned);
          assert.equal(JSON.parse(res.body).headers.cookie, 'theme=dark', 'the balancer cookie is stripped');
        }
        await lb.drain(pinned, { deadline: 500 });
        const res = await fetchText(`${url}/`, { headers: { cookie: cookie! } });
        assert.equal(res.status, 200);
        assert.notEqual(res.headers['x-clones-clone'], pinned);
        assert.ok(cookieOf(res.headers['set-cookie'], 'clones_sticky'), 're-pinned with a fresh cookie');
      } finally {
        await lb.close();
      }
    });

    test('sticky cookie: a forged value never pins a client to a clone that is out; an expired one pins nobody', async () => {
      const { lb, url } = await start({
        algorithm: 'round-robin',
        sticky: { enabled: true, duration: 1000 },
        targets: targets(),
      });
      try {
        await lb.drain('b', { deadline: 100 });
        for (const forged of ['clones_sticky=b', 'clones_sticky=b|AAAAA|AAAAA', 'clones_sticky=YQ.x.y']) {
          for (let i = 0; i < 4; i++) {
            const res = await fetchText(`${url}/`, { headers: { cookie: forged } });
            assert.equal(res.status, 200);
            assert.notEqual(res.headers['x-clones-clone'], 'b', `${forged} reached a drained clone`);
          }
        }
        const first = await fetchText(`${url}/`);
        const cookie = cookieOf(first.headers['set-cookie'], 'clones_sticky')!;
        // HAProxy keeps cookie dates in 4-second steps: wait past duration plus one step.
        await sleep(under.engine === 'haproxy' ? 9000 : 2100);
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++)
          seen.add((await fetchText(`${url}/`, { headers: { cookie } })).headers['x-clones-clone'] as string);
        assert.equal(seen.size, 2, 'an expired cookie pins nobody');
      } finally {
        await lb.close();
      }
    });

    test('groups: 90/10 weights send ~10% of new clients to the canary; they stay; weight 0 re-pins them; the group cookie has its duration', async () => {
      const { lb, url } = await start({
        groups: { blue: 90, green: 10 },
        groupStickiness: { duration: 3_600_000 },
        targets: [
          { id: 'a', url: ups[0]!.url, group: 'blue', release: 'v1' },
          { id: 'b', url: ups[1]!.url, group: 'blue', release: 'v1' },
          { id: 'c', url: ups[2]!.url, group: 'green', release: 'v2' },
        ],
      });
      try {
        let canary = 0;
        const canaryCookies: string[] = [];
        const n = 1000;
        for (let i = 0; i < n; i++) {
          const res = await fetchText(`${url}/`);
          if (i === 0) assert.match(res.headers['set-cookie']!.join(), /clones_group=[^;]+; Max-Age=3600/);
          if (res.headers['x-clones-release'] === 'v2') {
            canary++;
            if (canaryCookies.length < 10)
              canaryCookies.push(cookieOf(res.headers['set-cookie'], 'clones_group')!);
          }
        }
        const share = canary / n;
        const tolerance = skip('exactGroupSplit') ? 0.035 : 0.02;
        assert.ok(Math.abs(share - 0.1) <= tolerance, `canary share ${share}`);
        for (const cookie of canaryCookies) {
          const res = await fetchText(`${url}/`, { headers: { cookie: `a=1; ${cookie}` } });
          assert.equal(res.headers['x-clones-release'], 'v2');
          assert.equal(JSON.parse(res.body).headers.cookie, 'a=1', 'the group cookie is stripped');
        }
        const [name, value] = canaryCookies[0]!.split('=') as [string, string];
        const tampered = `${name}=${value.replace(/^green/, 'blue').replace(/.$/, (c) => (c === '0' ? '1' : '0'))}`;
        for (let i = 0; i < 20; i++) {
          const res = await fetchText(`${url}/`, { headers: { cookie: tampered } });
          assert.equal(res.status, 200);
        }
        lb.setGroupStickiness(120_000);
        lb.setGroupWeights({ blue: 100, green: 0 });
        await settle(lb);
        const res = await fetchText(`${url}/`, { headers: { cookie: canaryCookies[0]! } });
        assert.equal(
          res.headers['x-clones-release'],
          'v1',
          'a canary client whose group went to 0 is re-pinned',
        );
        assert.match(res.headers['set-cookie']!.join(), /clones_group=[^;]+; Max-Age=120/);
      } finally {
        await lb.close();
      }
    });

    test('version guard: after setReleases, not one answer from another release; lifting it restores them', async () => {
      const { lb, url } = await start({ targets: targets() });
      try {
        lb.setReleases(['r-c']);
        await settle(lb);
        for (let i = 0; i < 30; i++)
          assert.equal((await fetchText(`${url}/`)).headers['x-clones-release'], 'r-c');
        lb.setReleases(undefined);
        await settle(lb);
        const seen = new Set<string>();
        for (let i = 0; i < 30; i++)
          seen.add((await fetchText(`${url}/`)).headers['x-clones-clone'] as string);
        assert.equal(seen.size, 3);
      } finally {
        await lb.close();
      }
    });

    test('drain: in-flight requests finish, no new request reaches the target, a deadline cuts what is left', async () => {
      const { lb, url } = await start({ targets: targets().slice(0, 2) });
      try {
        const slow = fetchText(`${url}/slow?ms=500`);
        await sleep(100);
        const busy = lb.state().targets.find((t) => (t.inFlight as number) > 0 || true)!;
        void busy;
        const started = Date.now();
        const ids = ['a', 'b'];
        await Promise.all(ids.map((id) => lb.drain(id, { deadline: 5000 })));
        assert.ok(Date.now() - started >= 300, 'the drain waited for the in-flight request');
        assert.equal((await slow).status, 200);
        assert.equal((await fetchText(`${url}/`)).status, 503, 'a drained target gets nothing new');
      } finally {
        await lb.close();
      }
    });

    test('add and remove targets under keep-alive load: 0 failed requests', async () => {
      const { lb, url } = await start({ targets: targets().slice(0, 1) });
      try {
        let stop = false;
        const failures: string[] = [];
        let done = 0;
        const worker = async () => {
          while (!stop) {
            const res = await fetchText(`${url}/slow?ms=2`).catch((e) => ({ status: 0, body: String(e) }));
            if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
            done++;
          }
        };
        const workers = Array.from({ length: 8 }, worker);
        for (let round = 0; round < 3; round++) {
          await sleep(150);
          lb.addTarget({ id: `b${round}`, url: ups[1]!.url });
          await settle(lb);
          await sleep(150);
          await lb.removeTarget(`b${round}`, { deadline: 1000 });
        }
        await sleep(150);
        stop = true;
        await Promise.all(workers);
        assert.ok(done > 50, `${done} requests`);
        assert.deepEqual(failures, []);
      } finally {
        await lb.close();
      }
    });

    test('blue-green under keep-alive load: new group in, guard and weights switched, the old group removed: 0 failed', async () => {
      const fresh = await Promise.all(['n1', 'n2'].map((id) => startUpstream(id)));
      const { lb, url } = await start({
        targets: ups.slice(0, 2).map((u) => ({ id: u.id, url: u.url, group: 'blue', release: 'blue' })),
        healthCheck: { enabled: true, interval: 200, healthyThreshold: 1 },
      });
      try {
        let stop = false;
        const failures: string[] = [];
        let done = 0;
        // Keep-alive connections held across every change: each one the engine reconfigures under them.
        const agent = new Agent({ keepAlive: true, maxSockets: 4 });
        const worker = async () => {
          while (!stop) {
            const res = await fetchText(`${url}/up`, { agent }).catch((e) => ({
              status: 0,
              body: String(e),
            }));
            if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
            done++;
          }
        };
        const workers = Array.from({ length: 4 }, worker);
        await sleep(200);
        lb.setReleases(['blue', 'green']);
        for (const u of fresh) lb.addTarget({ id: u.id, url: u.url, group: 'green', release: 'green' });
        await waitFor(
          () =>
            lb.state().targets.filter((t) => t.release === 'green' && t.health === 'healthy').length === 2,
          10_000,
        );
        await settle(lb);
        lb.setReleases(['green']);
        lb.setGroupWeights({ green: 1, blue: 0 });
        await settle(lb);
        for (const u of ups.slice(0, 2)) {
          await sleep(150);
          await lb.removeTarget(u.id, { deadline: 1000 });
        }
        await sleep(300);
        stop = true;
        await Promise.all(workers);
        agent.destroy();
        assert.ok(done > 50, `${done} requests`);
        assert.deepEqual(failures, []);
      } finally {
        await lb.close();
        await Promise.all(fresh.map((u) => u.close()));
      }
    });

    test('WebSocket: the upgrade is relayed with x-clones-* headers, bytes flow, a drain closes it at the deadline', async () => {
      let cloneGot = '';
      const ws = await startWebSocketUpstream('ws', (socket) =>
        socket.on('data', (d: Buffer) => {
          cloneGot += d.toString('latin1');
        }),
      );
      const { lb, port } = await start({ targets: [{ id: 'ws', url: ws.url }] });
      try {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (d) => {
          text += d.toString('latin1');
        });
        const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
        socket.write(webSocketUpgrade('/chat'));
        await waitFor(() => text.includes('\r\n\r\n'), 3000);
        assert.match(text, /^HTTP\/1\.1 101/);
        assert.match(text, /x-clones-clone: ws/i);
        socket.write('ping-bytes');
        await waitFor(() => cloneGot.includes('ping-bytes'), 3000);
        const started = Date.now();
        await lb.drain('ws', { deadline: 300 });
        await Promise.race([closed, sleep(3000)]);
        assert.ok(socket.destroyed || socket.readableEnded, 'the WebSocket is closed at the deadline');
        assert.ok(Date.now() - started < 3000);
        if (!skip('wsCloseCode')) assert.ok(text.endsWith('\x88\x02\x03\xf4'), 'close frame with code 1012');
      } finally {
        await lb.close();
        await ws.close();
      }
    });

    describe('request hygiene: refused, the clone never sees it', () => {
      const vectors: [string, string, (status: number, closed: boolean, text: string) => boolean][] = [
        [
          'duplicate Content-Length',
          'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
          (s) => s === 400,
        ],
        [
          'Transfer-Encoding gzip',
          'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n',
          (s) => s === 400 || s === 501,
        ],
        [
          'chunked twice',
          'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n',
          (s) => s === 400 || s === 501,
        ],
        [
          'TE in HTTP/1.0',
          'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
          (s) => s === 400,
        ],
        ['two Hosts', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', (s) => s === 400],
        ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', (s) => s === 400],
        ['a path in Host', 'GET / HTTP/1.1\r\nHost: evil.example/../x@y\r\n\r\n', (s) => s === 400],
        [
          'Transfer_Encoding',
          'POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\nContent-Length: 0\r\n\r\n',
          (s) => s === 400,
        ],
        ['space in a header name', 'GET / HTTP/1.1\r\nHost: x\r\nX A: a\r\n\r\n', (s) => s === 400],
        ['GET *', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n', (s) => s === 400],
        ['ftp:// target', 'GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n', (s) => s === 400],
        ['CONNECT', 'CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n', (s) => s === 400 || s === 501],
        [
          'too many header lines',
          `GET / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
          (s) => s === 400 || s === 431,
        ],
      ];
      let running: Running;
      let clone: Upstream;
      before(async () => {
        clone = await startUpstream('h');
        running = await start({ targets: [{ id: 'h', url: clone.url }] });
      });
      after(async () => {
        await running.lb.close();
        await clone.close();
      });
      for (const [name, bytes, ok] of vectors) {
        test(name, async () => {
          const before = clone.seen.length;
          const { text, closed } = await rawRequest(running.port, bytes, 1500);
          const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
          assert.ok(ok(status, closed, text), `${name}: got ${text.split('\r\n')[0] || '(nothing)'}`);
          assert.equal(clone.seen.length, before, 'the clone saw nothing');
        });
      }

      test('Content-Length with Transfer-Encoding: refused, or (HAProxy) CL dropped, chunked forwarded, connection closed', async () => {
        const before = clone.seen.length;
        const { text, closed } = await rawRequest(
          running.port,
          'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
          1500,
        );
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
        if (status === 400) assert.equal(clone.seen.length, before);
        else {
          assert.equal(status, 200);
          assert.ok(closed, 'the connection is closed after the answer');
          const got = clone.seen.slice(before);
          assert.equal(got.length, 1, 'the pipelined request was dropped');
          assert.equal(got[0]!.body, 'abc');
          assert.equal(got[0]!.headers['content-length'], undefined);
        }
      });

      test('obs-fold: refused, or (RFC 9112 §5.2) unfolded to spaces before the clone sees it', async () => {
        const before = clone.seen.length;
        const { text } = await rawRequest(
          running.port,
          'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n',
        );
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
        if (status === 400) assert.equal(clone.seen.length, before);
        else {
          assert.equal(status, 200);
          assert.match(String(clone.seen.at(-1)!.headers['x-a']), /^a +b$/);
        }
      });

      test('OPTIONS * is answered by the balancer, absolute-form is normalised', async (t) => {
        if (skip('optionsStar')) return t.skip(String(skip('optionsStar')));
        const star = await rawRequest(
          running.port,
          'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        );
        assert.match(star.text, /^HTTP\/1\.1 200/);
        assert.match(star.text, /allow:/i);
        const abs = await rawRequest(
          running.port,
          'GET http://x/p?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        );
        assert.match(abs.text, /^HTTP\/1\.1 200/);
        assert.equal(clone.seen.at(-1)!.url, '/p?q=1');
      });
    });

    test('admin API: token required; state, targets and metrics; the same routes on every engine', async () => {
      const { lb, url } = await start({ admin: { port: 0, token: TOKEN }, targets: targets().slice(0, 2) });
      const admin = `http://127.0.0.1:${lb.adminAddress()!.port}`;
      const auth = { authorization: `Bearer ${TOKEN}` };
      try {
        assert.equal((await fetchText(`${admin}/state`)).status, 401);
        assert.equal((await fetchText(`${admin}/metrics`)).status, 401);
        const state = JSON.parse((await fetchText(`${admin}/state`, { headers: auth })).body);
        assert.deepEqual(state.targets.map((t: { id: string }) => t.id).sort(), ['a', 'b']);
        const added = await fetchText(`${admin}/targets`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ id: 'c', url: ups[2]!.url }),
        });
        assert.equal(added.status, 201);
        await settle(lb);
        const removed = await fetchText(`${admin}/targets/a?wait=1`, { method: 'DELETE', headers: auth });
        assert.equal(removed.status, 200);
        const seen = new Set<string>();
        for (let i = 0; i < 12; i++)
          seen.add((await fetchText(`${url}/`)).headers['x-clones-clone'] as string);
        assert.ok(!seen.has('a') && seen.has('c'), `${[...seen]}`);
        const metrics = await fetchText(`${admin}/metrics`, { headers: auth });
        assert.equal(metrics.status, 200);
        assert.match(metrics.body, /^# (HELP|TYPE) /m);
        assert.equal((await fetchText(`${admin}/nope`, { headers: auth })).status, 404);
      } finally {
        await lb.close();
      }
    });

    test('panic: with no healthy target in a group, every target gets traffic', async (t) => {
      if (skip('panic')) return t.skip(String(skip('panic')));
      const down = await startUpstream('down', (req, res) => {
        res.statusCode = req.url === '/up' ? 503 : 200;
        res.end('down');
      });
      const { lb, url } = await start({
        healthCheck: { enabled: true, interval: 100, transitionInterval: 50, jitter: 0 },
        targets: [{ id: 'down', url: down.url }],
      });
      try {
        await waitFor(() => lb.state().targets[0]!.health === 'unhealthy', 5000);
        assert.equal((await fetchText(`${url}/`)).status, 200);
      } finally {
        await lb.close();
        await down.close();
      }
    });
  });
}
