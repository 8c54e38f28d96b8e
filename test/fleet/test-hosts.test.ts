import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { listRuns, startTestHosts, type TestHosts } from '../harness/hosts.ts';

/** The OpenSSH client, strict about host keys, with the run's identity and known_hosts. */
function ssh(run: TestHosts, address: string, command: string, extra: string[] = []) {
  // OpenSSH keeps the first value of an option: the test's own come first.
  const args = [...extra, '-i', run.identity, '-o', `UserKnownHostsFile=${run.knownHosts}`];
  args.push('-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3');
  args.push(`root@${address}`, command);
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('ssh', args, { encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function redisPing(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port }, () => socket.write('PING\r\n'));
    socket.setTimeout(3000, () => reject(new Error('timeout')));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString());
    });
    socket.once('error', reject);
  });
}

const netns = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
const links = () => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;

describe('test hosts (network namespaces with sshd)', {
  skip: process.getuid?.() !== 0 && 'needs root',
}, () => {
  let run: TestHosts;
  before(async () => {
    run = await startTestHosts({ count: 2, cache: true });
  });
  after(async () => {
    await run?.stop();
  });

  test('each host answers SSH on its own address, with a host key from known_hosts and its own home', async () => {
    for (const host of run.hosts) {
      assert.match(host.address, /^198\.18\.\d+\.\d+$/);
      const r = await ssh(run, host.address, 'hostname -I; ip -4 -o addr show dev eth0; echo "HOME=$HOME"');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split('\n')[0]!.trim(), host.address, 'the namespace has only its own address');
      assert.match(r.stdout, new RegExp(`inet ${host.address.replace(/\./g, '\\.')}/24`));
      assert.match(r.stdout, new RegExp(`HOME=${host.dir}`));
    }
  });

  test('a host with a wrong known_hosts entry is refused by OpenSSH (the keys are really checked)', async () => {
    const [h1, h2] = run.hosts;
    // h2's key under h1's address: ssh must refuse h1.
    const wrong = `${run.runDir}/wrong_known_hosts`;
    spawnSync('sh', [
      '-c',
      `echo '${h1!.address} ${h2!.knownHostsLine.split(' ').slice(1).join(' ')}' > ${wrong}`,
    ]);
    const r = await ssh(run, h1!.address, 'true', ['-o', `UserKnownHostsFile=${wrong}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  test('namespaces have no default route and reach nothing off the bridge', async () => {
    for (const host of run.hosts) {
      const routes = await run.exec(host.name, ['ip', '-4', 'route', 'show']);
      assert.equal(routes.code, 0);
      assert.doesNotMatch(routes.stdout, /default/);
      const off = await run.exec(host.name, ['ip', 'route', 'get', '192.0.2.1']);
      assert.notEqual(off.code, 0, 'no route off the machine');
      assert.match(off.stderr, /unreachable/i);
    }
    assert.equal(
      spawnSync('cat', ['/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' }).stdout.trim(),
      '0',
    );
  });

  test('the cache host runs Redis on its address, reachable from this machine and from the hosts', async () => {
    assert.ok(run.cache);
    assert.match(await redisPing(run.cache.address, run.cache.redisPort), /\+PONG/);
    const script = `const s=require('net').connect(${run.cache.redisPort},'${run.cache.address}',()=>s.write('PING\\r\\n'));s.on('data',d=>{process.stdout.write(String(d));s.end()})`;
    const fromHost = await run.exec('h1', ['node', '-e', script]);
    assert.match(fromHost.stdout, /\+PONG/, fromHost.stderr);
  });

  test('linkDown cuts a host off; linkUp brings it back', async () => {
    const h2 = run.hosts[1]!;
    await run.linkDown('h2');
    const down = await ssh(run, h2.address, 'true');
    assert.equal(down.code, 255, 'ssh cannot connect');
    assert.equal((await ssh(run, run.hosts[0]!.address, 'true')).code, 0, 'the other host is unaffected');
    await run.linkUp('h2');
    let up = await ssh(run, h2.address, 'true');
    for (let i = 0; i < 20 && up.code !== 0; i++) {
      await sleep(100);
      up = await ssh(run, h2.address, 'true');
    }
    assert.equal(up.code, 0, up.stderr);
  });

  test('addHost joins a host later; killAll kills its processes but not sshd', async () => {
    const h3 = await run.addHost();
    assert.equal(h3.name, 'h3');
    assert.equal((await ssh(run, h3.address, 'true')).code, 0);
    const sleeper = run.spawn('h3', ['sleep', '60']);
    await sleep(200);
    assert.ok((await run.killAll('h3')) >= 1);
    await new Promise((resolve) => sleeper.once('exit', resolve));
    assert.equal((await ssh(run, h3.address, 'true')).code, 0, 'sshd survived');
  });

  test('stop removes the namespaces, the bridge and the files', async () => {
    const { prefix, runDir } = run;
    assert.match(netns(), new RegExp(prefix));
    await run.stop();
    assert.doesNotMatch(netns(), new RegExp(prefix));
    assert.doesNotMatch(links(), new RegExp(prefix));
    assert.equal(existsSync(runDir), false);
    assert.equal(spawnSync('pgrep', ['-f', `${runDir}/`]).status, 1, 'no process of the run is left');
  });
});

describe('a crashed run', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  test('is removed by the next start', async () => {
    // A child process starts hosts, prints its prefix, then is killed with SIGKILL: no cleanup runs.
    const code = `import { startTestHosts } from ${JSON.stringify(new URL('../harness/hosts.ts', import.meta.url).pathname)};
      const run = await startTestHosts({ count: 1 }); console.log(run.prefix, run.k); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d))));
    const [prefix, k] = line.trim().split(' ');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.match(netns(), new RegExp(prefix!), 'the crashed run left its namespace behind');
    assert.ok(listRuns().some((r) => r.k === Number(k) && !r.alive));
    const next = await startTestHosts({ count: 0 });
    try {
      assert.doesNotMatch(netns(), new RegExp(prefix!));
      assert.doesNotMatch(links(), new RegExp(prefix!));
      assert.equal(spawnSync('pgrep', ['-f', `/tmp/clones-hosts/${k}/`]).status, 1, 'its sshd was killed');
    } finally {
      await next.stop();
    }
  });
});
