import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { fetchText, sleep, startBalancer, startUpstream } from './helpers.ts';

const cookieOf = (setCookie: string[] | undefined, name: string): string | undefined =>
  setCookie?.find((c) => c.startsWith(`${name}=`))?.split(';')[0];

describe('balancer: sticky sessions (balancer cookie)', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map((id) => startUpstream(id)));
  const targets = ups.map((u) => ({ id: u.id, url: u.url }));
  after(() => Promise.all(ups.map((u) => u.close())));

  test('a cookie holds a client on one clone, re-issued on every answer (sliding), never shown to the clone', async () => {
    const { lb, url } = await startBalancer({ sticky: { enabled: true }, targets });
    try {
      const first = await fetchText(`${url}/`);
      const cookie = cookieOf(first.headers['set-cookie'], 'clones_sticky');
      assert.ok(cookie);
      assert.match(first.headers['set-cookie']!.join(), /Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax/);
      const pinned = first.headers['x-clones-clone'];
      for (let i = 0; i < 20; i++) {
        const res = await fetchText(`${url}/`, { headers: { cookie: `theme=dark; ${cookie}` } });
        assert.equal(res.headers['x-clones-clone'], pinned);
        assert.ok(cookieOf(res.headers['set-cookie'], 'clones_sticky'), 'the cookie slides');
        assert.equal(JSON.parse(res.body).headers.cookie, 'theme=dark', 'the balancer cookie is stripped');
      }
    } finally {
      await lb.close();
    }
  });

  test('a forged or tampered cookie is ignored', async () => {
    const { lb, url } = await startBalancer({ algorithm: 'round-robin', sticky: { enabled: true }, targets });
    try {
      const first = await fetchText(`${url}/`);
      const cookie = cookieOf(first.headers['set-cookie'], 'clones_sticky')!;
      const [, value] = cookie.split('=') as [string, string];
      const parts = value.split('.');
      const other = Buffer.from(first.headers['x-clones-clone'] === 'a' ? 'b' : 'a').toString('base64url');
      const forged = [
        `clones_sticky=${other}.${parts[1]}.${parts[2]}`,
        `clones_sticky=${parts[0]}.${parts[1]}.AAAAAAAAAAAAAAAAAAAAAA`,
        'clones_sticky=a',
      ];
      for (const f of forged) {
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++)
          seen.add(
            (await fetchText(`${url}/`, { headers: { cookie: f } })).headers['x-clones-clone'] as string,
          );
        assert.equal(seen.size, 3, `${f} pinned the client`);
      }
    } finally {
      await lb.close();
    }
  });

  test('the duration is enforced inside the signed value', async () => {
    const { lb, url } = await startBalancer({
      algorithm: 'round-robin',
      sticky: { enabled: true, duration: 1000 },
      targets,
    });
    try {
      const first = await fetchText(`${url}/`);
      const cookie = cookieOf(first.headers['set-cookie'], 'clones_sticky')!;
      assert.match(first.headers['set-cookie']!.join(), /Max-Age=1;/);
      await sleep(2100);
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++)
        seen.add((await fetchText(`${url}/`, { headers: { cookie } })).headers['x-clones-clone'] as string);
      assert.equal(seen.size, 3, 'an expired cookie pins nobody');
    } finally {
      await lb.close();
    }
  });

  test('a client whose clone is draining or gone is re-pinned at once, never a 503', async () => {
    const { lb, url } = await startBalancer({ sticky: { enabled: true }, targets });
    try {
      const first = await fetchText(`${url}/`);
      const cookie = cookieOf(first.headers['set-cookie'], 'clones_sticky')!;
      const pinned = first.headers['x-clones-clone'] as string;
      await lb.removeTarget(pinned, { deadline: 100 });
      const res = await fetchText(`${url}/`, { headers: { cookie } });
      assert.equal(res.status, 200);
      assert.notEqual(res.headers['x-clones-clone'], pinned);
      const repinned = cookieOf(res.headers['set-cookie'], 'clones_sticky')!;
      const again = await fetchText(`${url}/`, { headers: { cookie: repinned } });
      assert.equal(again.headers['x-clones-clone'], res.headers['x-clones-clone']);
    } finally {
      await lb.close();
    }
  });

  test('app-cookie mode: the same app cookie value lands on the same clone', async () => {
    const { lb, url } = await startBalancer({
      sticky: { enabled: true, mode: 'app', appCookie: 'sid' },
      targets,
    });
    try {
      const spread = new Set<string>();
      for (let user = 0; user < 30; user++) {
        const seen = new Set<string>();
        for (let i = 0; i < 4; i++)
          seen.add(
            (await fetchText(`${url}/`, { headers: { cookie: `sid=user-${user}` } })).headers[
              'x-clones-clone'
            ] as string,
          );
        assert.equal(seen.size, 1);
        spread.add([...seen][0]!);
      }
      assert.equal(spread.size, 3, 'different users spread over the clones');
    } finally {
      await lb.close();
    }
  });
});

describe('balancer: target groups', async () => {
  const blue = await Promise.all(['b1', 'b2'].map((id) => startUpstream(id)));
  const green = await startUpstream('g1');
  after(() => Promise.all([...blue, green].map((u) => u.close())));

  test('weights 90/10 give 10% ±2% of new clients to the canary, and they stay on it', async () => {
    const { lb, url } = await startBalancer({
      groups: { blue: 90, green: 10 },
      targets: [
        ...blue.map((u) => ({ id: u.id, url: u.url, group: 'blue', release: 'v1' })),
        { id: 'g1', url: green.url, group: 'green', release: 'v2' },
      ],
    });
    try {
      let canary = 0;
      const canaryCookies: string[] = [];
      for (let i = 0; i < 2000; i++) {
        const res = await fetchText(`${url}/`);
        if (res.headers['x-clones-release'] === 'v2') {
          canary++;
          if (canaryCookies.length < 20)
            canaryCookies.push(cookieOf(res.headers['set-cookie'], 'clones_group')!);
        }
      }
      assert.ok(Math.abs(canary / 2000 - 0.1) <= 0.02, `canary share ${canary / 2000}`);
      for (const cookie of canaryCookies) {
        for (let i = 0; i < 5; i++)
          assert.equal(
            (await fetchText(`${url}/`, { headers: { cookie } })).headers['x-clones-release'],
            'v2',
          );
      }
    } finally {
      await lb.close();
    }
  });

  test('a new group gets no traffic until given a weight; a client whose group lost its last target is re-pinned', async () => {
    const { lb, url } = await startBalancer({
      targets: blue.map((u) => ({ id: u.id, url: u.url, group: 'blue' })),
    });
    try {
      lb.addTarget({ id: 'g1', url: green.url, group: 'green' });
      for (let i = 0; i < 20; i++)
        assert.equal((await fetchText(`${url}/`)).headers['x-clones-release'], 'blue');
      lb.setGroupWeights({ blue: 0, green: 100 });
      const res = await fetchText(`${url}/`);
      assert.equal(res.headers['x-clones-release'], 'green');
      const cookie = cookieOf(res.headers['set-cookie'], 'clones_group')!;
      lb.setGroupWeights({ blue: 100, green: 100 });
      await lb.removeTarget('g1', { deadline: 100 });
      const moved = await fetchText(`${url}/`, { headers: { cookie } });
      assert.equal(moved.status, 200);
      assert.equal(moved.headers['x-clones-release'], 'blue');
    } finally {
      await lb.close();
    }
  });
});
