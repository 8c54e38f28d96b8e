import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { badHostsConfig, storeNotShared } from '../errors.ts';
import { APP_CONFIG } from './app-env.ts';

/**
 * One host of the fleet: how to reach it over SSH (the `HostSpec` the SSH transport takes), how many
 * clones it runs, the address they bind, and the port of its agent.
 */
export interface FleetHost {
  /** A short name for messages and `clones hosts`; the address unless given. */
  readonly name: string;
  readonly user: string;
  readonly address: string;
  /** The SSH port. */
  readonly port: number;
  /** The private key file used to log in. */
  readonly identity: string;
  /** The host's clones directory (relative paths are under the SSH user's home). */
  readonly dir: string;
  readonly clones: number;
  /** The address the host's clones and its agent listen on (the balancer connects to it). */
  readonly bind: string;
  /** The agent's port on `bind` (bearer token; the control machine must reach it). */
  readonly agentPort: number;
}

/** SSH settings shared by every host. */
export interface SshConfig {
  /** known_hosts file the host keys are checked against; an unknown or changed key is refused. */
  readonly knownHosts: string;
  readonly identity: string;
  /** Hosts worked on at once. */
  readonly parallel: number;
}

export interface HostsConfig {
  readonly hosts: readonly FleetHost[];
  readonly ssh: SshConfig;
}

/** Defaults for hosts, in one place. */
export const hostDefaults = Object.freeze({
  port: 22,
  dir: 'clones',
  agentPort: 7077,
  parallel: 10,
  knownHosts: join(homedir(), '.ssh', 'known_hosts'),
  identity: join(homedir(), '.ssh', 'id_ed25519'),
});

const KNOWN = new Set(['name', 'address', 'user', 'port', 'identity', 'clones', 'bind', 'dir', 'agentPort']);
const SSH_KNOWN = new Set(['knownHosts', 'identity', 'parallel']);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ADDRESS = /^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/i;

export interface HostsInput {
  /** `--host user@address[:port]`, repeatable; replaces clones.json `hosts` when given. */
  host?: readonly string[] | undefined;
  /** Clones per host when a host does not say (`--clones`). */
  clones?: number | undefined;
  /** Where relative identity and known_hosts paths are resolved (the app directory). */
  base?: string | undefined;
}

/**
 * The fleet's hosts from the app's `clones.json` (`hosts`, `ssh`) or `--host` flags, validated once (every
 * problem reported together, CLONES_FLEET_HOSTS_CONFIG), defaults filled in, frozen. `undefined` when no
 * host is configured: the fleet runs on this machine as before.
 *
 * @example
 *   // clones.json: { "hosts": [{ "address": "10.0.0.11", "clones": 2 }], "ssh": { "identity": "~/.ssh/deploy" } }
 *   const config = hostsConfig('examples/shop', { host: ['deploy@10.0.0.12:2222'] });
 */
export function hostsConfig(appDir: string, input: HostsInput = {}): HostsConfig | undefined {
  const file = join(appDir, APP_CONFIG);
  let raw: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        raw = parsed as Record<string, unknown>;
    } catch {
      // appEnv reports a malformed clones.json when the release is built.
    }
  }
  return hostsConfigFrom(raw, { ...input, base: input.base ?? appDir });
}

/** The validation of `hostsConfig`, on an already parsed clones.json object. */
function hostsConfigFrom(raw: Record<string, unknown>, input: HostsInput): HostsConfig | undefined {
  const errors: string[] = [];
  const base = input.base ?? '.';
  const sshRaw = raw.ssh ?? {};
  const ssh: Record<string, unknown> = {};
  if (sshRaw === null || typeof sshRaw !== 'object' || Array.isArray(sshRaw))
    errors.push('ssh: must be an object');
  else Object.assign(ssh, sshRaw);
  for (const key of Object.keys(ssh)) if (!SSH_KNOWN.has(key)) errors.push(`ssh.${key}: unknown option`);
  const path = (where: string, v: unknown, fallback: string): string => {
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || v === '') {
      errors.push(`${where}: must be a file path`);
      return fallback;
    }
    const expanded = v.startsWith('~/') ? join(homedir(), v.slice(2)) : v;
    return isAbsolute(expanded) ? expanded : resolve(base, expanded);
  };
  const parallel = ssh.parallel ?? hostDefaults.parallel;
  if (!Number.isInteger(parallel) || (parallel as number) < 1 || (parallel as number) > 100)
    errors.push('ssh.parallel: must be a whole number from 1 to 100');
  const sshConfig: SshConfig = Object.freeze({
    knownHosts: path('ssh.knownHosts', ssh.knownHosts, hostDefaults.knownHosts),
    identity: path('ssh.identity', ssh.identity, hostDefaults.identity),
    parallel: parallel as number,
  });

  let entries: { where: string; value: unknown }[];
  if (input.host && input.host.length > 0) {
    entries = input.host.map((flag) => ({ where: `--host ${flag}`, value: parseHostFlag(flag, errors) }));
  } else if (raw.hosts === undefined) {
    if (errors.length > 0) throw badHostsConfig(errors);
    return undefined;
  } else if (!Array.isArray(raw.hosts) || raw.hosts.length === 0) {
    throw badHostsConfig([...errors, 'hosts: must be a non-empty list of { address, user?, port?, ... }']);
  } else {
    entries = raw.hosts.map((value, i) => ({ where: `hosts[${i}]`, value }));
  }

  const hosts: FleetHost[] = [];
  for (const { where, value } of entries) {
    if (value === undefined) continue; // a bad --host flag, already reported
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      errors.push(`${where}: must be an object such as { "address": "10.0.0.11" }`);
      continue;
    }
    const h = value as Record<string, unknown>;
    for (const key of Object.keys(h)) if (!KNOWN.has(key)) errors.push(`${where}.${key}: unknown option`);
    const str = (key: string, re: RegExp, fallback?: string): string => {
      const v = h[key] ?? fallback;
      if (typeof v !== 'string' || !re.test(v)) {
        errors.push(`${where}.${key}: ${v === undefined ? 'is required' : `"${String(v)}" is not valid`}`);
        return '';
      }
      return v;
    };
    const int = (key: string, min: number, max: number, fallback: number): number => {
      const v = h[key] ?? fallback;
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
        errors.push(`${where}.${key}: must be a whole number from ${min} to ${max}`);
        return fallback;
      }
      return v as number;
    };
    const address = str('address', ADDRESS);
    const dir = h.dir ?? hostDefaults.dir;
    if (typeof dir !== 'string' || dir === '' || /[\s'"`$\\]/.test(dir) || dir.split('/').includes('..'))
      errors.push(`${where}.dir: must be a path without spaces, quotes, $ or ..`);
    hosts.push(
      Object.freeze({
        name: str('name', NAME, address),
        user: str('user', USER, userInfo().username),
        address,
        port: int('port', 1, 65_535, hostDefaults.port),
        identity: path(`${where}.identity`, h.identity, sshConfig.identity),
        dir: String(dir),
        clones: int('clones', 0, 256, input.clones ?? 2),
        bind: str('bind', ADDRESS, address),
        agentPort: int('agentPort', 1, 65_535, hostDefaults.agentPort),
      }),
    );
  }
  const seen = new Set<string>();
  for (const h of hosts) {
    if (seen.has(h.name)) errors.push(`host ${h.name}: listed twice (give each a distinct "name")`);
    seen.add(h.name);
  }
  if (errors.length > 0) throw badHostsConfig(errors);
  return Object.freeze({ hosts: Object.freeze(hosts), ssh: sshConfig });
}

/**
 * The hosts whose `clones` differ from the fleet's count, by name (a desired state's `hostClones`);
 * undefined when every host runs the fleet's count.
 *
 * @example
 *   hostCountsOf([{ name: 'a', clones: 2 }, { name: 'big', clones: 6 }], 2); // { big: 6 }
 */
export function hostCountsOf(
  hosts: readonly Pick<FleetHost, 'name' | 'clones'>[],
  clones: number,
): Record<string, number> | undefined {
  const counts = Object.fromEntries(hosts.filter((h) => h.clones !== clones).map((h) => [h.name, h.clones]));
  return Object.keys(counts).length > 0 ? counts : undefined;
}

/**
 * One more host from `user@address[:port]`, with the defaults and SSH settings of `config`.
 *
 * @example
 *   const h = hostFromFlag('root@10.0.0.14', config, 2);
 */
export function hostFromFlag(flag: string, config: HostsConfig, clones: number, base = '.'): FleetHost {
  const errors: string[] = [];
  const parsed = parseHostFlag(flag, errors);
  if (!parsed) throw badHostsConfig(errors);
  const model = config.hosts[0];
  const entry = {
    ...parsed,
    ...(model ? { dir: model.dir, agentPort: model.agentPort } : {}),
    identity: model?.identity ?? config.ssh.identity,
    clones,
  };
  const tmp = hostsConfigFrom({ hosts: [entry], ssh: {} }, { base });
  return tmp!.hosts[0]!;
}

/** `user@address[:port]` (an IPv6 address in brackets: `user@[fd00::1]:22`). */
function parseHostFlag(flag: string, errors: string[]): Record<string, unknown> | undefined {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@]+)(?::(\d+))?$/.exec(flag);
  if (!m) {
    errors.push(`--host ${flag}: must be user@address[:port]`);
    return undefined;
  }
  return {
    address: m[2]!.replace(/^\[|\]$/g, ''),
    ...(m[1] ? { user: m[1] } : {}),
    ...(m[3] ? { port: Number(m[3]) } : {}),
  };
}

/**
 * Refuses a session store that lives on one host (`sqlite:`, `memory:`) when the fleet has more than one:
 * a user's next request may land on another host. CLONES_FLEET_STORE_NOT_SHARED suggests `redis://`.
 *
 * @example
 *   assertSharedStore(env.SESSION_STORE, config.hosts.length);
 */
export function assertSharedStore(store: string | undefined, hosts: number): void {
  if (hosts <= 1) return;
  const url = store ?? 'sqlite:';
  if (/^(sqlite|memory):/i.test(url)) throw storeNotShared(url, hosts);
}
