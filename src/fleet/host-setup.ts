import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentUnavailable, hostCheckFailed } from '../errors.ts';
import { AgentClient } from './agent-client.ts';
import type { Emit } from './fleet-event.ts';
import type { FleetPaths } from './fleet-paths.ts';
import { agentFiles } from './host-agent.ts';
import type { FleetHost, HostsConfig } from './host-config.ts';
import { stageInstall, stageRelease } from './install-tree.ts';
import { shellQuote } from './shell-quote.ts';
import { type ShipResult, shipTree, type TreeManifest, treeManifest } from './ship-tree.ts';
import type { HostResult, SshTransport } from './ssh-transport.ts';

/** Free disk a host needs in its clones directory, in KiB (the install, a few releases, logs). */
const MIN_DISK_KIB = 300 * 1024;
const MIN_NODE_MAJOR = 20;

/** What setup found and did on one host. */
export interface HostSetup {
  host: string;
  /** The host's clones directory, absolute. */
  root: string;
  node: string;
  /** Steps that changed something; empty when the host was already set up. */
  changed: string[];
  /** Bytes sent over SSH. */
  bytes: number;
  agent: AgentClient;
}

/** Shipping one tree to many hosts hashes it once. */
const manifests = new Map<string, TreeManifest>();
function manifestOf(dir: string): TreeManifest {
  let m = manifests.get(dir);
  if (!m) {
    m = treeManifest(dir);
    manifests.set(dir, m);
  }
  return m;
}

/**
 * Sets one host up over SSH, idempotently: finds its clones directory, checks Node (>= 20, the same major as
 * here), free disk and the agent's port; ships this install of clones (package and run-time node_modules,
 * content-addressed: only the blobs the host lacks) to `installs/<digest>` and points `clones` at it; gives
 * the agent its token; starts the agent (a systemd unit where systemd runs the host, else a detached process
 * kept alive by a small shell loop with a pidfile) and waits until it answers. Running it again changes
 * nothing. Emits one `host` event per step.
 *
 * @example
 *   const done = await setupHost(ssh, host, { paths, installDir: stageInstall(paths), emit });
 *   console.log(done.changed.length === 0 ? 'unchanged' : done.changed.join(', '));
 */
export async function setupHost(
  ssh: SshTransport,
  host: FleetHost,
  o: { paths: FleetPaths; installDir: string; emit: Emit },
): Promise<HostSetup> {
  const changed: string[] = [];
  let bytes = 0;
  const note = (step: string, outcome: 'ok' | 'changed', detail?: string, sent?: number) => {
    if (outcome === 'changed') changed.push(step);
    o.emit({
      type: 'host',
      host: host.name,
      step,
      outcome,
      ...(detail ? { detail } : {}),
      ...(sent ? { bytes: sent } : {}),
    });
  };
  const run = async (step: string, command: string, stdin?: Buffer) =>
    (
      await ssh.exec(host, command, { step: `setup: ${step}`, ...(stdin ? { stdin } : {}), timeout: 60_000 })
    ).stdout.trim();

  const root = await hostRoot(ssh, host);
  note('directory', 'ok', root);

  const [nodePath, nodeVersion] = (await run('check node', 'command -v node && node --version')).split('\n');
  const major = Number(/^v(\d+)/.exec(nodeVersion ?? '')?.[1] ?? 0);
  if (major < MIN_NODE_MAJOR)
    throw hostCheckFailed(
      host.name,
      'check node',
      `Node ${nodeVersion ?? 'not found'}; clones needs >= ${MIN_NODE_MAJOR}`,
    );
  if (major !== Number(process.versions.node.split('.')[0]))
    throw hostCheckFailed(
      host.name,
      'check node',
      `Node ${nodeVersion} there, ${process.version} here: releases name their Node major; install the same one`,
    );
  note('check node', 'ok', `${nodePath} ${nodeVersion}`);

  const free = Number(await run('check disk', `df -Pk ${shellQuote([root])} | tail -1 | awk '{print $4}'`));
  if (!(free >= MIN_DISK_KIB))
    throw hostCheckFailed(
      host.name,
      'check disk',
      `${Math.round(free / 1024)} MiB free in ${root}; needs ${MIN_DISK_KIB / 1024} MiB`,
    );
  note('check disk', 'ok', `${Math.round(free / 1024)} MiB free`);

  // The install: content-addressed, so a host that has it gets nothing.
  const install = manifestOf(o.installDir);
  const installDir = `${root}/installs/${install.digest}`;
  const shipped = await shipTree(ssh, host, o.installDir, installDir, {
    step: 'setup: install clones',
    manifest: install,
    store: `${root}/blobs/sha256`,
  });
  bytes += shipped.sentBytes;
  const current = await run('install clones', `readlink ${shellQuote([`${root}/clones`])} || true`);
  const installChanged = current !== installDir;
  if (installChanged)
    await run(
      'install clones',
      `ln -sfn ${shellQuote([installDir, `${root}/clones.tmp`])} && mv -T ${shellQuote([`${root}/clones.tmp`, `${root}/clones`])}`,
    );
  note(
    'install clones',
    shipped.already && !installChanged ? 'ok' : 'changed',
    install.digest.slice(0, 12),
    shipped.sentBytes,
  );

  // The agent's token: the host keeps it (0600); this machine keeps a copy to call the agent.
  const tokenFile = join(o.paths.home, 'hosts', `${host.name}.token`);
  let token = await run('token', `cat ${shellQuote([`${root}/${agentFiles.token}`])} 2>/dev/null || true`);
  if (!token) {
    token = randomBytes(32).toString('base64url');
    await run(
      'token',
      `umask 077 && cat > ${shellQuote([`${root}/${agentFiles.token}`])}`,
      Buffer.from(`${token}\n`),
    );
    note('token', 'changed');
  } else note('token', 'ok');
  mkdirSync(join(o.paths.home, 'hosts'), { recursive: true, mode: 0o700 });
  if (!existsSync(tokenFile) || readFileSync(tokenFile, 'utf8').trim() !== token)
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });

  const agent = new AgentClient({ host: host.name, address: host.bind, port: host.agentPort, token });
  const running = await agent.status(3000).catch(() => undefined);
  if (running && !installChanged) {
    note('agent', 'ok', `pid ${running.pid}`);
  } else {
    if (!running) {
      // The port must be free for the agent (or ours already).
      const busy = await ssh.exec(host, portCheck(nodePath!, host), {
        step: 'setup: check port',
        allowFailure: true,
      });
      if (busy.code !== 0)
        throw hostCheckFailed(
          host.name,
          'check port',
          `${host.bind}:${host.agentPort}: ${busy.stderr.trim() || 'in use'}`,
        );
    }
    const how = await run('agent', agentStart(nodePath!, root, host, installChanged));
    await waitForAgent(agent, host);
    note('agent', 'changed', how);
  }
  return { host: host.name, root, node: nodeVersion ?? '', changed, bytes, agent };
}

/**
 * Ships a release to a host (only the blobs it lacks, digest-checked there) into `<root>/releases/<digest>`,
 * its `node_modules/clones` pointing at the host's install.
 *
 * @example
 *   const r = await shipRelease(ssh, host, root, paths, digest);
 *   console.log(r.sentBytes);
 */
export function shipRelease(
  ssh: SshTransport,
  host: FleetHost,
  root: string,
  paths: FleetPaths,
  digest: string,
): Promise<ShipResult> {
  const dir = stageRelease(paths, digest);
  return shipTree(ssh, host, dir, `${root}/releases/${digest}`, {
    step: `ship release ${digest.slice(0, 12)}`,
    manifest: manifestOf(dir),
    store: `${root}/blobs/sha256`,
  });
}

/**
 * The host's clones directory as an absolute path (relative dirs are under the SSH user's $HOME), made
 * private (0700) whatever its mode was: it holds the agent's token, the apps' environment and their releases.
 */
export async function hostRoot(ssh: SshTransport, host: FleetHost): Promise<string> {
  const dir = shellQuote([host.dir]);
  const r = await ssh.exec(
    host,
    `cd "$HOME" 2>/dev/null; mkdir -p -- ${dir} && chmod 700 -- ${dir} && cd -- ${dir} && pwd -P`,
    {
      step: 'setup: directory',
      timeout: 30_000,
    },
  );
  return r.stdout.trim();
}

/** Exits 0 when bind:port can be listened on; else prints why. */
function portCheck(node: string, host: FleetHost): string {
  const js = `require('net').createServer().once('error',e=>{console.error(e.code);process.exit(1)}).listen(${host.agentPort},${JSON.stringify(host.bind)},function(){this.close()})`;
  return shellQuote([node, '-e', js]);
}

/**
 * Starts the agent. With systemd running the host, a unit (KillMode=process: restarting the agent leaves
 * its clones alone); else a shell loop in its own session restarts the agent when it dies, its pid in
 * `agent-keeper.pid`. `restart` replaces a running agent (a new install).
 */
function agentStart(node: string, root: string, host: FleetHost, restart: boolean): string {
  // The agent runs clones's sources through the tsx it ships with (dist/ may lag behind a checkout).
  const argv = [
    node,
    '--conditions=clones-source',
    '--import',
    `file://${root}/clones/node_modules/tsx/dist/loader.mjs`,
    `${root}/clones/bin/clones.js`,
    'agent',
    '--home',
    root,
    '--bind',
    host.bind,
    '--port',
    String(host.agentPort),
  ];
  const unit = `clones-agent-${host.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  const unitText = [
    '[Unit]',
    `Description=clones host agent (${root})`,
    'After=network-online.target',
    '[Service]',
    `ExecStart=${shellQuote(argv)}`,
    'Environment=CLONES_LOG_LEVEL=info',
    // The same log file as the detached process: `clones logs` and a failed setup's message point at it.
    `StandardOutput=append:${root}/logs/agent.log`,
    'StandardError=inherit',
    'Restart=always',
    'RestartSec=1',
    'KillMode=process',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  const r = shellQuote([root]);
  const keeper = `${root}/agent-keeper.pid`;
  // Private files (umask 077 only around their creation: the agent and its clones keep the login's umask).
  const loop = `(umask 077; echo $$ > ${shellQuote([keeper])}); while :; do CLONES_LOG_LEVEL=info ${shellQuote(argv)}; sleep 1; done`;
  return [
    `cd ${r} || exit 1`,
    '(umask 077; mkdir -p logs && touch logs/agent.log) && chmod 700 logs && chmod 600 logs/agent.log',
    `if [ "$(id -u)" = 0 ] && state=$(systemctl is-system-running 2>/dev/null) && { [ "$state" = running ] || [ "$state" = degraded ]; }; then`,
    `  printf %s ${shellQuote([unitText])} > /etc/systemd/system/${unit}.service`,
    `  systemctl daemon-reload && systemctl enable ${unit} >/dev/null 2>&1`,
    `  if ${restart ? 'true' : 'false'}; then systemctl restart ${unit}; else systemctl start ${unit}; fi`,
    `  echo "systemd unit ${unit}"`,
    '  exit 0',
    'fi',
    `if [ -f agent-keeper.pid ] && kill -0 "$(cat agent-keeper.pid)" 2>/dev/null; then`,
    `  if ${restart ? 'true' : 'false'}; then kill "$(cat agent-keeper.pid)"; [ -f ${agentFiles.pid} ] && kill "$(cat ${agentFiles.pid})" 2>/dev/null; sleep 1; else echo "process (already running)"; exit 0; fi`,
    'fi',
    `setsid nohup sh -c ${shellQuote([loop])} >> logs/agent.log 2>&1 < /dev/null &`,
    'echo "detached process, kept alive by a shell loop (agent-keeper.pid)"',
  ].join('\n');
}

async function waitForAgent(agent: AgentClient, host: FleetHost): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      await agent.status(2000);
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw agentUnavailable(
    host.name,
    'setup: agent',
    `did not answer on ${host.bind}:${host.agentPort} within 30 s (${last}); see logs/agent.log there`,
  );
}

/**
 * `clones setup`: every host at once (bounded by `ssh.parallel`), each independently; a host that fails is
 * reported with its name and step and does not stop the others. Returns the agents' tokens by host.
 *
 * @example
 *   const { results, tokens } = await setupHosts(ssh, config, paths, (e) => console.log(e));
 */
export async function setupHosts(
  ssh: SshTransport,
  config: HostsConfig,
  paths: FleetPaths,
  emit: Emit,
): Promise<{ results: HostResult<HostSetup>[]; tokens: Record<string, string> }> {
  const installDir = stageInstall(paths);
  const results = await ssh.eachHost(
    [...config.hosts],
    (h) => setupHost(ssh, h as FleetHost, { paths, installDir, emit }),
    config.ssh.parallel,
  );
  const tokens: Record<string, string> = {};
  for (const r of results) if (r.ok) tokens[r.host.name] = r.value.agent.endpoint.token;
  return { results, tokens };
}

/** The agent token this machine keeps for a host (written by setup), if any. */
export function savedToken(paths: FleetPaths, host: string): string | undefined {
  try {
    return readFileSync(join(paths.home, 'hosts', `${host}.token`), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
