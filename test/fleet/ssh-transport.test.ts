import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClonesError } from '../../src/errors.ts';
import type { HostSpec } from '../../src/fleet/host-spec.ts';
import { addKnownHost, checkHostKey, hostKeyFingerprint } from '../../src/fleet/known-hosts.ts';
import { shellQuote } from '../../src/fleet/shell-quote.ts';
import { type ShipResult, shipTree, treeManifest } from '../../src/fleet/ship-tree.ts';
import { blobHeader, manifestFrame, receiveCommand } from '../../src/fleet/ship-tree-remote.ts';
import type { SshOptions } from '../../src/fleet/ssh-options.ts';
import { SshTransport } from '../../src/fleet/ssh-transport.ts';
import { hostSpec, startTestHosts, type TestHosts } from '../harness/hosts.ts';

const root = process.getuid?.() === 0;

/** Resolves with the ClonesError a promise rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<ClonesError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ClonesError, `expected a ClonesError, got ${err}`);
    return err;
  }
  assert.fail('expected a rejection');
}

/** Runs fn with a transport of its own (other known_hosts, other options), closed afterwards. */
async function withTransport<T>(options: SshOptions, fn: (ssh: SshTransport) => Promise<T>): Promise<T> {
  const ssh = new SshTransport(options);
  try {
    return await fn(ssh);
  } finally {
    await ssh.close();
  }
}

/** The raw key blob of an OpenSSH public key file. */
function keyBlob(pubFile: string): Buffer {
  return Buffer.from(readFileSync(pubFile, 'utf8').trim().split(/\s+/)[1]!, 'base64');
}

describe('SSH transport against test hosts', { skip: !root && 'needs root' }, () => {
  let run: TestHosts;
  let hosts: HostSpec[];
  let ssh: SshTransport;
  let work: string;
  before(async () => {
    run = await startTestHosts({ count: 3 });
    hosts = run.hosts.map((h) => hostSpec(run, h));
    ssh = new SshTransport({ knownHosts: run.knownHosts, readyTimeout: 3000 });
    work = mkdtempSync(join(tmpdir(), 'clones-ssh-test-'));
  });
  after(async () => {
    await ssh?.close();
    await run?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('exec runs a command on the host, over the network, with stdin, output and exit code', async () => {
    const h1 = hosts[0]!;
    const r = await ssh.exec(h1, 'hostname -I; echo "$HOME"; echo warn >&2', { step: 'look' });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.split('\n')[0]!.trim(), h1.address);
    assert.equal(r.stdout.split('\n')[1], h1.dir);
    assert.equal(r.stderr, 'warn\n');
    const echoed = await ssh.exec(h1, 'sha256sum', { step: 'stdin', stdin: Buffer.from('hello') });
    assert.match(echoed.stdout, new RegExp(createHash('sha256').update('hello').digest('hex')));
    const tricky = `it's a "test" $HOME; rm -rf /nothing`;
    const quoted = await ssh.exec(h1, shellQuote(['printf', '%s', tricky]), { step: 'quote' });
    assert.equal(quoted.stdout, tricky);
    assert.equal((await ssh.exec(h1, 'exit 7', { step: 'allowed', allowFailure: true })).code, 7);
  });

  test('a failing command is CLONES_HOST_STEP_FAILED with host, step, exit code and the last stderr lines', async () => {
    const command = 'for i in $(seq 1 30); do echo "line $i" >&2; done; exit 3';
    const err = await rejection(ssh.exec(hosts[1]!, command, { step: 'setup: check disk' }));
    assert.equal(err.code, 'CLONES_HOST_STEP_FAILED');
    assert.match(err.message, /host h2, step "setup: check disk": the command exited with code 3/);
    assert.match(err.message, /line 30/);
    assert.doesNotMatch(err.message, /line 20\n/, 'only the last lines');
  });

  test('a command over its timeout is CLONES_HOST_STEP_TIMEOUT, and the connection stays usable', async () => {
    const err = await rejection(ssh.exec(hosts[0]!, 'sleep 37.5; echo late', { step: 'slow', timeout: 300 }));
    assert.equal(err.code, 'CLONES_HOST_STEP_TIMEOUT');
    assert.match(err.message, /host h1, step "slow"/);
    let left = '';
    for (let i = 0; i < 40; i++) {
      left = (await run.exec('h1', ['pgrep', '-f', 'sleep 37.5'])).stdout;
      if (left === '') break;
      await sleep(50);
    }
    assert.equal(left, '', 'the command was stopped on the host');
    const quick = await ssh.exec(hosts[0]!, 'echo fast', { step: 'quick', timeout: 5000 });
    assert.equal(quick.stdout, 'fast\n', 'the process-group line is not part of the output');
    assert.equal((await ssh.exec(hosts[0]!, 'echo ok', { step: 'after' })).stdout, 'ok\n');
  });

  test('more commands at once than sshd MaxSessions (10) on one host all succeed', async () => {
    const all = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        ssh.exec(hosts[0]!, `sleep 0.2; echo ${i}`, { step: `many ${i}` }),
      ),
    );
    assert.deepEqual(
      all.map((r) => r.stdout.trim()),
      Array.from({ length: 25 }, (_, i) => String(i)),
    );
  });

  test("a fast command's exit status is kept when the reply to exec and the exit arrive in one read", async () => {
    // While this process is busy, sshd's reply to the exec request, the output, the exit status and the close
    // pile up in the socket and are parsed in one go: a CI run lost such exits ("the SSH connection was lost").
    const busy = setInterval(() => {
      const until = Date.now() + 30;
      while (Date.now() < until) {
        // Keep the event loop busy so the host's answers arrive together.
      }
    }, 1);
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 120 }, (_, i) => ssh.exec(hosts[1]!, `echo ${i}`, { step: `fast ${i}` })),
      );
      const lost = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
      assert.deepEqual(lost, []);
    } finally {
      clearInterval(busy);
    }
  });

  test('a dropped connection is made again on the next command', async () => {
    const h3 = hosts[2]!;
    await ssh.exec(h3, 'true', { step: 'connect' });
    // Kill the per-connection sshd processes in h3's namespace only: the pooled connection dies.
    const pids = execFileSync('ip', ['netns', 'pids', run.hosts[2]!.ns], { encoding: 'utf8' }).split('\n');
    let killed = 0;
    for (const pid of pids.filter(Boolean)) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/^sshd: root@/.test(cmdline)) {
        process.kill(Number(pid), 'SIGKILL');
        killed++;
      }
    }
    assert.ok(killed >= 1, 'found the session process');
    await sleep(200);
    assert.equal((await ssh.exec(h3, 'echo again', { step: 'reconnect' })).stdout, 'again\n');
  });

  test('an unknown host key is refused with CLONES_HOST_KEY_UNKNOWN naming the host and the fingerprint', async () => {
    const known = join(work, 'known_hosts_unknown');
    writeFileSync(known, `${run.hosts[0]!.knownHostsLine}\n`);
    await withTransport({ knownHosts: known }, async (strict) => {
      const err = await rejection(strict.exec(hosts[1]!, 'true', { step: 'setup: check node' }));
      assert.equal(err.code, 'CLONES_HOST_KEY_UNKNOWN');
      const fingerprint = execFileSync('ssh-keygen', ['-lf', run.hosts[1]!.hostKeyFile], {
        encoding: 'utf8',
      });
      assert.ok(err.message.includes(fingerprint.split(' ')[1]!), `${err.message} names ${fingerprint}`);
      assert.match(err.message, /host h2/);
      assert.match(err.message, /--accept-new-host-keys/);
      assert.equal(readFileSync(known, 'utf8'), `${run.hosts[0]!.knownHostsLine}\n`, 'known_hosts unchanged');
    });
  });

  test('acceptNewHostKeys adds an unknown key to known_hosts; later connections verify against it', async () => {
    const known = join(work, 'known_hosts_accept');
    writeFileSync(known, '');
    await withTransport({ knownHosts: known, acceptNewHostKeys: true }, (accepting) =>
      accepting.exec(hosts[1]!, 'true', { step: 'accept' }),
    );
    assert.equal(readFileSync(known, 'utf8').trim(), run.hosts[1]!.knownHostsLine);
    const r = await withTransport({ knownHosts: known }, (strict) =>
      strict.exec(hosts[1]!, 'echo ok', { step: 'strict' }),
    );
    assert.equal(r.stdout, 'ok\n');
  });

  test('a CHANGED host key is refused with CLONES_HOST_KEY_CHANGED, even with acceptNewHostKeys', async () => {
    const known = join(work, 'known_hosts_changed');
    // h2's key filed under h1's address: what a man-in-the-middle (or a reinstalled h1) looks like.
    writeFileSync(
      known,
      `# other\n${run.hosts[0]!.address} ${run.hosts[1]!.knownHostsLine.split(' ').slice(1).join(' ')}\n`,
    );
    const before = readFileSync(known, 'utf8');
    await withTransport({ knownHosts: known, acceptNewHostKeys: true }, async (accepting) => {
      const err = await rejection(accepting.exec(hosts[0]!, 'true', { step: 'deploy' }));
      assert.equal(err.code, 'CLONES_HOST_KEY_CHANGED');
      assert.match(err.message, /host h1/);
      assert.match(err.message, /line 2/);
      assert.ok(err.message.includes(hostKeyFingerprint(keyBlob(run.hosts[0]!.hostKeyFile))));
      assert.equal(readFileSync(known, 'utf8'), before, 'known_hosts unchanged');
    });
  });

  test('hashed known_hosts entries (ssh-keygen -H) are understood', async () => {
    const known = join(work, 'known_hosts_hashed');
    writeFileSync(known, run.hosts.map((h) => `${h.knownHostsLine}\n`).join(''));
    execFileSync('ssh-keygen', ['-H', '-f', known], { stdio: 'ignore' });
    assert.match(readFileSync(known, 'utf8'), /^\|1\|/);
    assert.doesNotMatch(readFileSync(known, 'utf8'), /198\.18/);
    const r = await withTransport({ knownHosts: known }, (hashed) =>
      hashed.exec(hosts[2]!, 'echo ok', { step: 'h' }),
    );
    assert.equal(r.stdout, 'ok\n');
  });

  test('a host whose link is down is CLONES_HOST_UNREACHABLE naming host and step, within readyTimeout', async () => {
    const fresh = new SshTransport({ knownHosts: run.knownHosts, readyTimeout: 1500 });
    await run.linkDown('h2');
    try {
      const started = Date.now();
      const err = await rejection(fresh.exec(hosts[1]!, 'true', { step: 'ship release 1a2b3c' }));
      assert.equal(err.code, 'CLONES_HOST_UNREACHABLE');
      assert.match(err.message, /host h2 is unreachable \(step "ship release 1a2b3c"\)/);
      assert.match(err.message, /within 1500 ms/);
      assert.ok(Date.now() - started < 1500 + 2000, 'reported at the ready timeout, not later');
      const nobody = { ...hosts[1]!, name: 'ghost', address: `198.18.${run.k}.250` };
      const err2 = await rejection(fresh.exec(nobody, 'true', { step: 'setup: check node' }));
      assert.equal(err2.code, 'CLONES_HOST_UNREACHABLE');
      assert.match(err2.message, /host ghost is unreachable \(step "setup: check node"\)/);
    } finally {
      await run.linkUp('h2');
      await fresh.close();
    }
  });

  test('a key the host does not accept is CLONES_HOST_AUTH_FAILED', async () => {
    const other = join(work, 'other_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other], { stdio: 'ignore' });
    const err = await rejection(ssh.exec({ ...hosts[0]!, identity: other }, 'true', { step: 'login' }));
    assert.equal(err.code, 'CLONES_HOST_AUTH_FAILED');
    assert.match(err.message, /host h1 refused SSH key/);
    const missing = await rejection(
      ssh.exec({ ...hosts[0]!, identity: join(work, 'nope') }, 'true', { step: 'x' }),
    );
    assert.equal(missing.code, 'CLONES_INVALID_OPTION');
  });

  test('eachHost runs at most `limit` hosts at once, waits for all, and reports each failure by host', async () => {
    let running = 0;
    let peak = 0;
    const many = [...hosts, ...hosts, { ...hosts[0]!, name: 'ghost', address: `198.18.${run.k}.251` }];
    const fresh = new SshTransport({ knownHosts: run.knownHosts, readyTimeout: 1000 });
    try {
      const results = await fresh.eachHost(
        many,
        async (h) => {
          running++;
          peak = Math.max(peak, running);
          try {
            return (await fresh.exec(h, 'sleep 0.3; hostname -I', { step: 'each' })).stdout.trim();
          } finally {
            running--;
          }
        },
        2,
      );
      assert.equal(peak, 2);
      assert.equal(results.length, many.length);
      assert.deepEqual(
        results.slice(0, 6).map((r) => (r.ok ? r.value : r.error.code)),
        [...hosts, ...hosts].map((h) => h.address),
      );
      const last = results[6]!;
      assert.equal(last.ok, false);
      assert.equal(last.ok ? '' : last.error.code, 'CLONES_HOST_UNREACHABLE');
      assert.equal(last.host.name, 'ghost');
    } finally {
      await fresh.close();
    }
  });

  test('forward reaches a server bound to the host address inside its namespace', async () => {
    const h1 = run.hosts[0]!;
    const server = run.spawn('h1', [
      process.execPath,
      '-e',
      `require('http').createServer((q, s) => s.end('from ' + q.socket.localAddress)).listen(8080, '${h1.address}', () => console.log('up'))`,
    ]);
    try {
      await new Promise((resolve) => server.stdout!.once('data', resolve));
      const tunnel = await ssh.forward(hosts[0]!, h1.address, 8080);
      try {
        const res = await fetch(`http://127.0.0.1:${tunnel.port}/`);
        assert.equal(await res.text(), `from ${h1.address}`);
        const again = await fetch(`http://127.0.0.1:${tunnel.port}/again`);
        assert.equal(again.status, 200);
      } finally {
        await tunnel.close();
      }
    } finally {
      server.kill('SIGKILL');
    }
  });

  describe('shipTree: content-addressed trees over SSH', () => {
    let host: HostSpec;
    let both: HostSpec[];
    let first: string;
    before(async () => {
      both = hosts.slice(0, 2);
      host = both[0]!;
      first = join(work, 'r1');
      mkdirSync(join(first, 'lib', 'deep'), { recursive: true });
      mkdirSync(join(first, 'empty'));
      for (let i = 0; i < 60; i++)
        writeFileSync(join(first, 'lib', `m${i}.js`), randomBytes(16_000).toString('base64'));
      writeFileSync(join(first, 'lib', 'deep', 'same.txt'), 'same');
      writeFileSync(join(first, 'same.txt'), 'same');
      writeFileSync(join(first, 'start.sh'), '#!/bin/sh\necho started\n');
      chmodSync(join(first, 'start.sh'), 0o755);
      writeFileSync(join(first, 'plain.sh'), '#!/bin/sh\necho started\n');
      symlinkSync('lib/m1.js', join(first, 'entry.js'));
    });

    const remote = (name: string, on = host) => `${on.dir}/releases/${name}`;
    const sh = async (command: string) => (await ssh.exec(host, command, { step: 'check' })).stdout;

    test('the first ship sends every distinct file; the tree arrives intact, read-only, links and modes kept', async () => {
      const manifest = treeManifest(first);
      const results = await ssh.eachHost(both, (h) => shipTree(ssh, h, first, remote('r1', h), { manifest }));
      const [r, r2] = results.map((x) => (x.ok ? x.value : assert.fail(x.error))) as [ShipResult, ShipResult];
      assert.equal(r2.sentFiles, r.sentFiles, 'each host gets what it lacks');
      const distinct = new Set(manifest.entries.filter((e) => e[0] === 'f').map((e) => e[2])).size;
      assert.equal(r.files, 64);
      assert.equal(r.sentFiles, distinct, 'equal contents are sent once');
      assert.equal(r.digest, manifest.digest);
      assert.equal(r.already, false);
      // What is on the host, read over SSH: same content, same kinds, read-only and owner-only (0500/0400).
      const local = execFileSync('sh', ['-c', 'find . -type f -exec sha256sum {} + | sort -k2'], {
        cwd: first,
        encoding: 'utf8',
      });
      const there = await sh(
        `cd ${remote('r1')} && find . -type f ! -name .clones-tree.json -exec sha256sum {} + | sort -k2`,
      );
      assert.equal(there, local);
      assert.equal((await sh(`readlink ${remote('r1')}/entry.js`)).trim(), 'lib/m1.js');
      assert.equal((await sh(`${remote('r1')}/start.sh`)).trim(), 'started');
      const modes = await sh(`cd ${remote('r1')} && stat -c '%a %n' . lib empty start.sh plain.sh lib/m0.js`);
      assert.equal(modes, '500 .\n500 lib\n500 empty\n500 start.sh\n400 plain.sh\n400 lib/m0.js\n');
      assert.ok(r.sentBytes > 60 * 16_000, 'the bytes went over SSH');
    });

    test('a second tree differing by one file sends exactly one blob and under 5% of the bytes', async () => {
      const resend = await shipTree(ssh, host, first, remote('r1'));
      assert.equal(resend.already, true);
      assert.ok(resend.sentBytes < 10_000, 'shipping the same tree again sends only the hash list');
      const second = join(work, 'r2');
      cpSync(first, second, { recursive: true, verbatimSymlinks: true });
      writeFileSync(join(second, 'lib', 'm7.js'), 'changed');
      const full = treeManifest(first).entries.reduce((n, e) => n + (e[0] === 'f' ? e[3] : 0), 0);
      for (const h of both) {
        const r = await shipTree(ssh, h, second, remote('r2', h));
        assert.equal(r.sentFiles, 1, `${h.name} gets one blob`);
        assert.ok(r.sentBytes < full * 0.05, `${r.sentBytes} bytes < 5% of ${full}`);
      }
      assert.equal((await sh(`cat ${remote('r2')}/lib/m7.js`)).trim(), 'changed');
      assert.equal(
        (await sh(`stat -c %h ${remote('r2')}/lib/m8.js`)).trim(),
        '3',
        'store + r1 + r2 share one inode',
      );
      const again = await shipTree(ssh, host, second, remote('r2'));
      assert.equal(again.already, true);
      assert.equal(again.sentFiles, 0);
    });

    test('a damaged blob already on the host is detected, deleted and sent again', async () => {
      const third = join(work, 'r3');
      cpSync(first, third, { recursive: true, verbatimSymlinks: true });
      writeFileSync(join(third, 'new.txt'), 'brand new content');
      const hex = createHash('sha256').update('brand new content').digest('hex');
      // A blob file with the right name and the wrong bytes, as a disk error or a tampering would leave it.
      await sh(
        `mkdir -p ${host.dir}/releases/blobs/sha256 && printf 'evil' > ${host.dir}/releases/blobs/sha256/${hex}`,
      );
      const r = await shipTree(ssh, host, third, remote('r3'));
      assert.equal(r.repaired, 1);
      assert.equal(r.sentFiles, 1);
      assert.equal((await sh(`cat ${remote('r3')}/new.txt`)).trim(), 'brand new content');
    });

    test('a blob corrupted in transit is refused: not stored, no tree built', async () => {
      const manifest = treeManifest(first);
      const [, path, hex, size] = manifest.entries.find(
        (e) => e[0] === 'f' && e[1] === 'lib/m3.js',
      ) as unknown as ['f', string, string, number];
      const data = readFileSync(join(first, path));
      data[100] = data[100]! ^ 0xff; // one bit-flipped byte on the way
      const store = `${host.dir}/other/blobs/sha256`;
      const stdin = Buffer.concat([
        blobHeader(hex, size),
        data,
        manifestFrame(JSON.stringify({ digest: manifest.digest, entries: manifest.entries })),
      ]);
      const r = await ssh.exec(host, receiveCommand(store, `${host.dir}/other/r1`, manifest.digest), {
        step: 'ship corrupt',
        stdin,
        allowFailure: true,
      });
      assert.equal(r.code, 3);
      assert.match(
        r.stderr,
        new RegExp(`blob ${hex} arrived with sha256 [0-9a-f]{64}: corrupted in transit`),
      );
      assert.equal(
        (await sh(`ls -A ${store}; ls -d ${host.dir}/other/r1 2>/dev/null || echo none`)).trim(),
        'none',
      );
    });

    test('shipping another tree onto an existing one is CLONES_HOST_TREE_CONFLICT', async () => {
      const other = join(work, 'r4');
      mkdirSync(other);
      writeFileSync(join(other, 'x'), 'x');
      const err = await rejection(shipTree(ssh, host, other, remote('r1'), { step: 'ship release r4' }));
      assert.equal(err.code, 'CLONES_HOST_TREE_CONFLICT');
      assert.match(err.message, /host h1/);
    });

    test('another directory beside a shipped tree reuses the store: only the hash list and manifest travel', async () => {
      const r = await shipTree(ssh, host, first, `${host.dir}/releases/r1-copy`);
      assert.equal(r.sentFiles, 0);
      assert.ok(r.sentBytes < 20_000);
    });
  });
});

describe('known_hosts parsing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clones-known-hosts-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const keyA = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), randomBytes(36)]);
  const keyB = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), randomBytes(36)]);
  const keyC = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), randomBytes(36)]);

  test('[host]:port entries, wildcards, negation and @revoked', () => {
    const file = join(dir, 'kh');
    writeFileSync(
      file,
      [
        `[10.0.0.5]:2222 ssh-ed25519 ${keyA.toString('base64')}`,
        `*.example.com,!bad.example.com ssh-ed25519 ${keyA.toString('base64')}`,
        `@revoked * ssh-ed25519 ${keyB.toString('base64')}`,
        '',
      ].join('\n'),
    );
    assert.deepEqual(checkHostKey(file, '10.0.0.5', 2222, keyA), { status: 'known' });
    assert.deepEqual(checkHostKey(file, '10.0.0.5', 22, keyA), { status: 'unknown' });
    assert.deepEqual(checkHostKey(file, 'web.example.com', 22, keyA), { status: 'known' });
    assert.deepEqual(checkHostKey(file, 'bad.example.com', 22, keyA), { status: 'unknown' });
    assert.deepEqual(checkHostKey(file, '10.0.0.5', 2222, keyC), { status: 'changed', line: 1 });
    assert.deepEqual(checkHostKey(file, 'new.host', 22, keyB), { status: 'changed', line: 3 }, 'revoked');
    addKnownHost(file, '10.0.0.6', 2200, keyC);
    assert.deepEqual(checkHostKey(file, '10.0.0.6', 2200, keyC), { status: 'known' });
    assert.deepEqual(checkHostKey(file, '10.0.0.6', 2200, keyA), { status: 'changed', line: 4 });
    assert.match(readFileSync(file, 'utf8'), /\n\[10\.0\.0\.6\]:2200 ssh-ed25519 /);
  });

  test('a missing file knows no host', () => {
    assert.deepEqual(checkHostKey(join(dir, 'none'), 'h', 22, keyA), { status: 'unknown' });
  });
});
