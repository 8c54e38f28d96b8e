// Test hosts on one machine: each host is a Linux network namespace joined by a veth pair to a bridge this
// harness creates, with an address from 198.18.0.0/15 (RFC 2544's benchmark range), no default route and no
// forwarding off the machine, running its own sshd. The control side (this process, in the root namespace)
// reaches the hosts through the bridge, only over the network.
//
// Names: every object of one run carries the prefix `clh<k>-` where k (1..254) is the run's third address
// octet, claimed atomically in /tmp/clones-hosts. A run whose owner process died (a crashed test) is torn down
// by the next start; a run made by `npm run hosts -- up` is marked persistent and stays until `down`.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClonesError } from '../../src/errors.ts';
import { ensureBinary } from './ensure-binary.ts';
import { enterSystemd, removeHostCgroups, systemdBootArgv, waitForSystemd } from './systemd-host.ts';

/** One test host: a network namespace with its own address and sshd, and a home directory of its own. */
export interface TestHost {
  /** `h1`, `h2`, ... */
  readonly name: string;
  /** The network namespace (`ip netns exec <ns> ...`). */
  readonly ns: string;
  /** Its address on the bridge, 198.18.<k>.<10+i>; sshd listens on it, port 22. */
  readonly address: string;
  readonly sshPort: number;
  readonly user: 'root';
  /** The host's own home directory (also `$HOME` of SSH sessions); the fleet must reach it over SSH only. */
  readonly dir: string;
  /** The host's public key file (`ssh-keygen -lf` prints its fingerprint). */
  readonly hostKeyFile: string;
  /** `<address> ssh-ed25519 AAAA...`: this host's known_hosts line. */
  readonly knownHostsLine: string;
  /** With `systemd: true`: the pid (here) of the host's systemd, its PID 1 (test/harness/systemd-host.ts). */
  readonly systemdPid?: number;
}

/** The "cache host": a namespace on the same bridge running redis-server on its own address. */
export interface TestCacheHost {
  readonly ns: string;
  readonly address: string;
  readonly redisPort: number;
  /** `redis://198.18.<k>.2:6379` */
  readonly redisUrl: string;
}

/** A set of test hosts; `stop()` removes every namespace, link, process and file the run made. */
export interface TestHosts {
  /** Third octet of every address of this run: 198.18.<k>.0/24. */
  readonly k: number;
  readonly prefix: string;
  readonly hosts: TestHost[];
  readonly cache?: TestCacheHost;
  /** Private key the control side authenticates with (its `.pub` is every host's authorized key). */
  readonly identity: string;
  /** A known_hosts file (OpenSSH format) holding every host's key. */
  readonly knownHosts: string;
  /** The run's directory (keys, sshd configs, logs, host homes). */
  readonly runDir: string;
  /** The bridge's address, which is how hosts reach this machine: 198.18.<k>.1. */
  readonly gateway: string;
  /** Starts one more host (a host that "joins later"). */
  addHost(): Promise<TestHost>;
  /** Cuts the host off the network (its veth goes down): packets to and from it are lost, like a dead link. */
  linkDown(name: string): Promise<void>;
  linkUp(name: string): Promise<void>;
  /** Runs argv inside the host (its network namespace, or its systemd's namespaces; as root, for tests). */
  exec(name: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a long-running process inside the host's namespace; `stop()` kills it if it still runs. */
  spawn(name: string, argv: string[]): ChildProcess;
  /** Kills every process in the host's namespace except its sshd (an agent and its clones, say). */
  killAll(name: string, signal?: NodeJS.Signals): Promise<number>;
  /** Removes everything (idempotent). Persistent runs too. */
  stop(): Promise<void>;
}

export interface StartTestHostsOptions {
  count: number;
  /** Also start the cache host with redis-server. */
  cache?: boolean;
  /** Keep the run after this process exits (`npm run hosts -- up`); only `stop()`/`down` remove it. */
  persistent?: boolean;
  /** Every host runs systemd as its PID 1, which runs its sshd (as a real server does). */
  systemd?: boolean;
}

/** Where runs are claimed and keep their files. */
export const HOSTS_BASE = '/tmp/clones-hosts';
const FAMILY = /^clh(\d{1,3})-/;
const NET = '198.18';

interface Claim {
  pid: number;
  start: string;
  persistent: boolean;
}

/** What a run writes to `<runDir>/run.json` so that `npm run hosts -- status|down` can find it. */
export interface RunRecord {
  k: number;
  prefix: string;
  runDir: string;
  identity: string;
  knownHosts: string;
  gateway: string;
  hosts: TestHost[];
  cache?: TestCacheHost;
  pids: number[];
}

const live = new Map<number, () => void>();
/** A synchronous sleep for teardown, which must also work inside an 'exit' handler. */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
let hooked = false;

/**
 * Starts `count` test hosts (and the cache host), each with sshd answering on its address, and resolves when
 * every sshd (and Redis) answers. Needs root and `ip` (iproute2), `sshd` (openssh-server), `ssh-keygen`.
 *
 * @example
 *   const fleet = await startTestHosts({ count: 3, cache: true });
 *   // ssh -i fleet.identity -o UserKnownHostsFile=fleet.knownHosts root@fleet.hosts[0].address
 *   await fleet.linkDown('h2');
 *   await fleet.stop();
 */
export async function startTestHosts(options: StartTestHostsOptions): Promise<TestHosts> {
  if (process.getuid?.() !== 0)
    throw new ClonesError(
      'CLONES_HOST_NEEDS_ROOT',
      'test hosts needs root (it creates network namespaces, a bridge and sshd servers); run it as root, e.g. sudo npm run hosts -- up 3',
    );
  if (!Number.isInteger(options.count) || options.count < 0 || options.count > 200) {
    throw new ClonesError('CLONES_INVALID_OPTION', `count: must be an integer 0..200, got ${options.count}`);
  }
  ensureBinary('ip', 'iproute2');
  ensureBinary('/usr/sbin/sshd', 'openssh-server');
  ensureBinary('ssh-keygen', 'openssh-client');
  if (options.cache) ensureBinary('redis-server');
  removeStaleRuns();

  const k = claimSubnet(options.persistent === true);
  const prefix = `clh${k}-`;
  const runDir = join(HOSTS_BASE, String(k));
  const gateway = `${NET}.${k}.1`;
  const bridge = `${prefix}br`;
  const hosts: TestHost[] = [];
  const pids: number[] = [];
  const children = new Set<ChildProcess>();
  let cache: TestCacheHost | undefined;
  let stopped = false;

  const teardown = () => {
    if (stopped) return;
    stopped = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    teardownRun(k);
    live.delete(k);
  };
  if (!options.persistent) {
    live.set(k, teardown);
    hookExit();
  }

  try {
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    // sshd's privilege separation directory; Debian creates it from its service unit, which we do not run.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const identity = join(runDir, 'id_ed25519');
    keygen(identity, `clones-test-control-${k}`);
    writeFileSync(join(runDir, 'authorized_keys'), readFileSync(`${identity}.pub`));
    const knownHosts = join(runDir, 'known_hosts');
    writeFileSync(knownHosts, '', { mode: 0o600 });

    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${gateway}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');

    const record = (): RunRecord => ({
      k,
      prefix,
      runDir,
      identity,
      knownHosts,
      gateway,
      hosts: [...hosts],
      ...(cache ? { cache } : {}),
      pids: [...pids],
    });
    const save = () => writeFileSync(join(runDir, 'run.json'), `${JSON.stringify(record(), null, 2)}\n`);

    const addHost = async (): Promise<TestHost> => {
      const i = hosts.length + 1;
      if (10 + i > 254)
        throw new ClonesError('CLONES_INVALID_OPTION', 'test hosts: at most 244 hosts per run');
      const name = `h${i}`;
      const ns = `${prefix}${name}`;
      const address = `${NET}.${k}.${10 + i}`;
      makeNamespace(ns, bridge, address);
      const base = join(runDir, name);
      const dir = join(base, 'home');
      mkdirSync(dir, { recursive: true });
      const hostKey = join(base, 'ssh_host_ed25519_key');
      keygen(hostKey, `clones-test-${ns}`);
      const config = join(base, 'sshd_config');
      writeFileSync(config, sshdConfig({ address, hostKey, base, dir, runDir, name }));
      const sshdArgv = ['/usr/sbin/sshd', '-D', '-e', '-f', config];
      let systemdPid: number | undefined;
      if (options.systemd) {
        const log = join(base, 'systemd.log');
        const boot = startDaemon(ns, systemdBootArgv(ns, base, sshdArgv, join(base, 'sshd.log')), log);
        pids.push(boot.pid);
        systemdPid = await waitForSystemd(boot.pid, log);
        pids.push(systemdPid);
      } else {
        pids.push(startDaemon(ns, sshdArgv, join(base, 'sshd.log')).pid);
      }
      await waitFor(`sshd of ${name} (${address}:22)`, join(base, 'sshd.log'), () =>
        probe(address, 22, null, (reply) => reply.startsWith('SSH-2.0-')),
      );
      const pub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
      const host: TestHost = Object.freeze({
        name,
        ns,
        address,
        sshPort: 22,
        user: 'root' as const,
        dir,
        hostKeyFile: `${hostKey}.pub`,
        knownHostsLine: `${address} ${pub[0]} ${pub[1]}`,
        ...(systemdPid === undefined ? {} : { systemdPid }),
      });
      hosts.push(host);
      writeFileSync(knownHosts, hosts.map((h) => `${h.knownHostsLine}\n`).join(''));
      save();
      return host;
    };

    if (options.cache) {
      const ns = `${prefix}c`;
      const address = `${NET}.${k}.2`;
      makeNamespace(ns, bridge, address);
      const dataDir = join(runDir, 'cache');
      mkdirSync(dataDir, { recursive: true });
      const redis = startDaemon(
        ns,
        [ensureBinary('redis-server'), '--bind', address, '--port', '6379', '--protected-mode', 'no'].concat([
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dataDir,
          '--daemonize',
          'no',
          '--logfile',
          '',
        ]),
        join(dataDir, 'redis.log'),
      );
      pids.push(redis.pid);
      await waitFor(`redis-server of the cache host (${address}:6379)`, join(dataDir, 'redis.log'), () =>
        probe(address, 6379, 'PING\r\n', (reply) => reply.includes('+PONG')),
      );
      cache = Object.freeze({ ns, address, redisPort: 6379, redisUrl: `redis://${address}:6379` });
    }
    for (let i = 0; i < options.count; i++) await addHost();
    save();

    const find = (name: string): TestHost => {
      const host = hosts.find((h) => h.name === name || h.ns === name);
      if (host) return host;
      if (cache && (name === 'cache' || name === cache.ns)) return { ns: cache.ns } as TestHost;
      throw new ClonesError('CLONES_INVALID_OPTION', `test hosts: no host named "${name}"`);
    };

    return {
      k,
      prefix,
      get hosts() {
        return [...hosts];
      },
      ...(cache ? { cache } : {}),
      identity,
      knownHosts,
      runDir,
      gateway,
      addHost,
      async linkDown(name) {
        ip('link', 'set', find(name).ns, 'down');
      },
      async linkUp(name) {
        ip('link', 'set', find(name).ns, 'up');
      },
      exec(name, argv) {
        const [cmd, ...args] = inHost(find(name), argv);
        return new Promise((resolve) => {
          const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d) => {
            stdout += d;
          });
          child.stderr.on('data', (d) => {
            stderr += d;
          });
          child.once('error', (err) => resolve({ code: 127, stdout, stderr: stderr + err.message }));
          child.once('close', (code) => resolve({ code: code ?? 128, stdout, stderr }));
        });
      },
      spawn(name, argv) {
        const [cmd, ...args] = inHost(find(name), argv);
        const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        children.add(child);
        child.once('exit', () => children.delete(child));
        return child;
      },
      async killAll(name, signal = 'SIGKILL') {
        const keep = new Set(pids);
        let killed = 0;
        const host = find(name);
        for (const pid of netnsPids(host.ns)) {
          if (keep.has(pid) || isSshdOf(pid, keep, host.systemdPid !== undefined)) continue;
          try {
            process.kill(pid, signal);
            killed++;
          } catch {
            // Already gone.
          }
        }
        return killed;
      },
      async stop() {
        teardown();
      },
    };
  } catch (err) {
    teardown();
    throw err;
  }
}

/**
 * How the SSH transport reaches a test host (the shape of src/fleet's `HostSpec`).
 *
 * @example
 *   const ssh = new SshTransport({ knownHosts: run.knownHosts });
 *   await ssh.exec(hostSpec(run, run.hosts[0]!), 'true', { step: 'check' });
 */
export function hostSpec(
  run: Pick<TestHosts, 'identity'>,
  host: TestHost,
): { name: string; user: string; address: string; port: number; identity: string; dir: string } {
  return {
    name: host.name,
    user: host.user,
    address: host.address,
    port: host.sshPort,
    identity: run.identity,
    dir: host.dir,
  };
}

/**
 * Every run in /tmp/clones-hosts with its record and whether its owner still runs (persistent runs have none).
 *
 * @example
 *   for (const run of listRuns()) console.log(run.k, run.persistent, run.record?.hosts.length);
 */
export function listRuns(): Array<{ k: number; persistent: boolean; alive: boolean; record?: RunRecord }> {
  if (!existsSync(HOSTS_BASE)) return [];
  const out: Array<{ k: number; persistent: boolean; alive: boolean; record?: RunRecord }> = [];
  for (const name of readdirSync(HOSTS_BASE)) {
    const m = /^claim-(\d+)$/.exec(name);
    if (!m) continue;
    const k = Number(m[1]);
    const claim = readClaim(k);
    let record: RunRecord | undefined;
    try {
      record = JSON.parse(readFileSync(join(HOSTS_BASE, String(k), 'run.json'), 'utf8')) as RunRecord;
    } catch {
      record = undefined;
    }
    out.push({
      k,
      persistent: claim?.persistent ?? false,
      alive: claim ? claim.persistent || ownerAlive(claim) : false,
      ...(record ? { record } : {}),
    });
  }
  return out.sort((a, b) => a.k - b.k);
}

/**
 * Removes one run completely: kills every process in its namespaces, deletes the namespaces, the bridge,
 * the run directory and the claim. Synchronous so that it can run in an 'exit' handler.
 *
 * @example
 *   teardownRun(17);
 */
export function teardownRun(k: number): void {
  const prefix = `clh${k}-`;
  for (const ns of listNetns().filter((n) => n.startsWith(prefix))) {
    for (const pid of netnsPids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    // A killed process takes a moment to leave the namespace; deleting it first would leave it alive.
    for (let i = 0; i < 100 && netnsPids(ns).length > 0; i++) Atomics.wait(SLEEPER, 0, 0, 20);
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
  for (const link of listLinks().filter((l) => l.startsWith(prefix))) {
    spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
  }
  const cgroups = join(HOSTS_BASE, `cgroups-${k}`);
  removeHostCgroups(prefix, cgroups, (ms) => Atomics.wait(SLEEPER, 0, 0, ms));
  rmSync(cgroups, { recursive: true, force: true });
  rmSync(join(HOSTS_BASE, String(k)), { recursive: true, force: true });
  rmSync(join(HOSTS_BASE, `claim-${k}`), { force: true });
}

/**
 * Tears down every run whose owner process is gone (a crashed test), and namespaces or links of the family
 * with no claim at all. Persistent runs (`npm run hosts -- up`) and runs of live processes are left alone.
 *
 * @example
 *   removeStaleRuns();
 */
export function removeStaleRuns(): number[] {
  const removed = new Set<number>();
  const claimed = new Set<number>();
  for (const run of listRuns()) {
    if (run.alive) claimed.add(run.k);
    else {
      teardownRun(run.k);
      removed.add(run.k);
    }
  }
  for (const name of [...listNetns(), ...listLinks()]) {
    const m = FAMILY.exec(name);
    if (!m) continue;
    const k = Number(m[1]);
    if (claimed.has(k) || removed.has(k) || existsSync(join(HOSTS_BASE, `claim-${k}`))) continue;
    teardownRun(k);
    removed.add(k);
  }
  return [...removed];
}

// ---------------------------------------------------------------------------------------------------------

/** Claims a free 198.18.<k>.0/24 by hard-linking a complete claim file into place (atomic; fails if taken). */
function claimSubnet(persistent: boolean): number {
  mkdirSync(HOSTS_BASE, { recursive: true, mode: 0o700 });
  const used = new Set<number>();
  const addrs = spawnSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (const m of addrs.matchAll(/inet 198\.18\.(\d+)\./g)) used.add(Number(m[1]));
  const claim: Claim = { pid: process.pid, start: processStart(process.pid) ?? '', persistent };
  const tmp = join(HOSTS_BASE, `.claim-${process.pid}-${randomBytes(4).toString('hex')}`);
  writeFileSync(tmp, JSON.stringify(claim));
  try {
    const first = 1 + Math.floor(Math.random() * 254);
    for (let n = 0; n < 254; n++) {
      const k = ((first - 1 + n) % 254) + 1;
      if (used.has(k) || listNetns().some((ns) => ns.startsWith(`clh${k}-`))) continue;
      try {
        linkSync(tmp, join(HOSTS_BASE, `claim-${k}`));
        return k;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  } finally {
    unlinkSync(tmp);
  }
  throw new ClonesError('CLONES_INVALID_OPTION', 'test hosts: every 198.18.<k>.0/24 (k 1..254) is in use');
}

function readClaim(k: number): Claim | undefined {
  try {
    return JSON.parse(readFileSync(join(HOSTS_BASE, `claim-${k}`), 'utf8')) as Claim;
  } catch {
    return undefined;
  }
}

/** The owner runs if its pid exists with the same start time (a reused pid is another process). */
function ownerAlive(claim: Claim): boolean {
  const start = processStart(claim.pid);
  return start !== undefined && start === claim.start;
}

function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the command name, which may hold spaces and ends with ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const all = () => {
    for (const teardown of [...live.values()]) teardown();
  };
  process.once('exit', all);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      all();
      process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const)[signal]);
    });
  }
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new ClonesError('CLONES_HOST_STEP_FAILED', `test hosts: ip ${args.join(' ')}: ${r.stderr.trim()}`);
  }
}

/** A namespace with lo up and eth0 (the peer of a veth on the bridge) holding `address/24`, no default route. */
function makeNamespace(ns: string, bridge: string, address: string): void {
  ip('netns', 'add', ns);
  ip('link', 'add', ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  ip('link', 'set', ns, 'master', bridge);
  ip('link', 'set', ns, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
  ip('-n', ns, 'link', 'set', 'eth0', 'up');
}

function listNetns(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

function listLinks(): string[] {
  const out = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  return [...out.matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1]!);
}

function netnsPids(ns: string): number[] {
  const out = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map(Number)
    .filter((n) => n > 0 && n !== process.pid);
}

/** How argv runs inside a host: in its network namespace, or inside its systemd's namespaces. */
function inHost(host: Pick<TestHost, 'ns' | 'systemdPid'>, argv: string[]): string[] {
  return host.systemdPid === undefined
    ? ['ip', 'netns', 'exec', host.ns, ...argv]
    : [...enterSystemd(host.systemdPid), ...argv];
}

/**
 * sshd's own per-connection processes are children of the listening sshd: `killAll` spares them too. On a
 * systemd host the listening sshd is a unit of the host's systemd: every sshd there is spared.
 */
function isSshdOf(pid: number, daemons: Set<number>, anySshd: boolean): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return comm === 'sshd' && (anySshd || daemons.has(ppid));
  } catch {
    return false;
  }
}

function keygen(file: string, comment: string): void {
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {
    stdio: 'ignore',
  });
  chmodSync(file, 0o600);
}

function sshdConfig(o: {
  address: string;
  hostKey: string;
  base: string;
  dir: string;
  runDir: string;
  name: string;
}): string {
  return [
    `ListenAddress ${o.address}:22`,
    `HostKey ${o.hostKey}`,
    `PidFile ${join(o.base, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `AuthorizedKeysFile ${join(o.runDir, 'authorized_keys')}`,
    // The run directory lives under /tmp, whose sticky, world-writable mode StrictModes would reject.
    'StrictModes no',
    'UsePAM no',
    'PrintMotd no',
    'UseDNS no',
    // Each host has its own home: SSH sessions see it as $HOME.
    `SetEnv HOME=${o.dir} CLONES_TEST_HOST=${o.name}`,
    'Subsystem sftp internal-sftp',
    'LogLevel INFO',
    '',
  ].join('\n');
}

/** Starts a daemon inside a namespace, detached and logging to a file, so it can outlive a persistent run's script. */
function startDaemon(ns: string, argv: string[], log: string): { pid: number } {
  const fd = openSync(log, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    if (child.pid === undefined) throw new ClonesError('CLONES_HOST_STEP_FAILED', `cannot start ${argv[0]}`);
    return { pid: child.pid };
  } finally {
    closeSync(fd);
  }
}

async function waitFor(what: string, log: string, ready: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ready()) return;
    await sleep(25);
  }
  const output = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
  throw new ClonesError(
    'CLONES_HOST_STEP_FAILED',
    `test hosts: ${what} was not ready after ${ms} ms\n${output}`,
  );
}

/** Connects to address:port, optionally writes `request`, and answers whether the reply satisfies `expect`. */
function probe(
  host: string,
  port: number,
  request: string | null,
  expect: (reply: string) => boolean,
): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.once('connect', () => {
      if (request) socket.write(request);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (expect(reply)) done(true);
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(expect(reply)));
  });
}
