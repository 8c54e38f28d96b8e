// A test host whose init is systemd, as on a real server: inside the host's network namespace, new PID, mount
// and UTS namespaces in which systemd 252 runs as PID 1 and starts the host's sshd as a unit. What it may
// touch is fenced off in its own mount namespace:
//   - /run, /etc/systemd/system and /var/lib/systemd are private tmpfs copies, so units written on the host
//     (`clones setup` writes /etc/systemd/system/clones-agent-*.service) never reach this machine's /etc;
//   - every unit file of the distribution is masked except targets and slices, and the generators directory
//     is empty: systemd starts what the test asks for and nothing of the machine's own services
//     (no journald, no tmpfiles cleaning /tmp, no udev);
//   - its cgroups are a subtree named after the namespace (`<prefix><host>`) in both hierarchies, so several
//     such hosts, each believing it owns the cgroup root, do not meet.
// SIGKILL to its systemd (from this PID namespace, an ancestor) ends every process of the host;
// `removeHostCgroups` then deletes the subtrees.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClonesError } from '../../src/errors.ts';
import { ensureBinary } from './ensure-binary.ts';

const SYSTEMD = '/lib/systemd/systemd';
const HIERARCHIES = [
  ['systemd', ['-t', 'cgroup', '-o', 'none,name=systemd']],
  ['unified', ['-t', 'cgroup2']],
] as const;

/** The shell script that prepares the namespaces and execs systemd; $1 the cgroup name, $2 the units dir. */
const BOOT = `#!/bin/sh
set -e
G=$1
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p /run/sshd /run/cg/systemd /run/cg/unified
mount -t cgroup -o none,name=systemd cgroup /run/cg/systemd
mount -t cgroup2 cgroup2 /run/cg/unified
mount -t tmpfs tmpfs /sys/fs/cgroup
for h in systemd unified; do
  mkdir -p /run/cg/$h/$G /sys/fs/cgroup/$h
  echo $$ > /run/cg/$h/$G/cgroup.procs
  mount --bind /run/cg/$h/$G /sys/fs/cgroup/$h
  umount /run/cg/$h
done
mount -t tmpfs tmpfs /etc/systemd/system
mkdir -p /run/no-generators /run/var-lib-systemd
mount --bind /run/no-generators /usr/lib/systemd/system-generators
mount --bind /run/var-lib-systemd /var/lib/systemd
for u in /usr/lib/systemd/system/*; do
  n=$(basename "$u")
  case "$n" in *.target|*.slice) continue;; esac
  [ -d "$u" ] && continue
  ln -sf /dev/null "/etc/systemd/system/$n"
done
cp "$2"/* /etc/systemd/system/
exec ${SYSTEMD} --system --unit=clones-test-host.target --log-target=console --log-level=notice
`;

/** The argv prefix that runs a command inside a systemd host (its mount, PID, UTS and network namespaces). */
export function enterSystemd(pid: number): string[] {
  return ['nsenter', '-t', String(pid), '-m', '-p', '-u', '-n'];
}

/**
 * The argv (run inside the host's network namespace) that boots systemd for host `ns`, with `sshd` (its
 * argv) as the unit `clones-test-sshd.service` logging to `sshdLog`. Writes the boot script and units
 * under `base`.
 */
export function systemdBootArgv(ns: string, base: string, sshd: string[], sshdLog: string): string[] {
  ensureBinary(SYSTEMD, 'systemd');
  ensureBinary('nsenter', 'util-linux');
  const units = join(base, 'units');
  mkdirSync(units, { recursive: true });
  const script = join(base, 'boot-systemd.sh');
  writeFileSync(script, BOOT, { mode: 0o755 });
  writeFileSync(
    join(units, 'clones-test-sshd.service'),
    [
      '[Unit]',
      'Description=sshd of a clones test host',
      '[Service]',
      `ExecStart=${sshd.join(' ')}`,
      `StandardOutput=append:${sshdLog}`,
      'StandardError=inherit',
      'Restart=always',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(units, 'clones-test-host.target'),
    ['[Unit]', 'Description=clones test host', 'Wants=clones-test-sshd.service', ''].join('\n'),
  );
  return ['unshare', '--fork', '--pid', '--mount', '--uts', '--mount-proc', 'sh', script, ns, units];
}

/** systemd's pid (in this PID namespace): the child `unshare` forked. Waits until it runs its units. */
export async function waitForSystemd(unsharePid: number, log: string, ms = 15_000): Promise<number> {
  const deadline = Date.now() + ms;
  let pid: number | undefined;
  let state = '';
  while (Date.now() < deadline) {
    pid ??= childOf(unsharePid);
    if (pid !== undefined && comm(pid) === 'systemd') {
      const r = spawnSync(
        enterSystemd(pid)[0]!,
        [...enterSystemd(pid).slice(1), 'systemctl', 'is-system-running'],
        {
          encoding: 'utf8',
        },
      );
      state = (r.stdout ?? '').trim();
      if (state === 'running' || state === 'degraded') return pid;
    }
    await sleep(50);
  }
  const output = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
  throw new ClonesError(
    'CLONES_HOST_STEP_FAILED',
    `test hosts: systemd did not reach "running" in ${ms} ms (state "${state}")\n${output}`,
  );
}

/**
 * Deletes the cgroup subtrees of systemd hosts whose namespace starts with `prefix` (after their processes
 * died; retried while the kernel still counts them). Synchronous, for teardown in an 'exit' handler.
 */
export function removeHostCgroups(prefix: string, mountDir: string, wait: (ms: number) => void): void {
  for (const [name, args] of HIERARCHIES) {
    const at = join(mountDir, `cg-${name}`);
    mkdirSync(at, { recursive: true });
    if (spawnSync('mount', [...args, 'cgroup', at], { stdio: 'ignore' }).status !== 0) continue;
    try {
      for (const dir of readdirSync(at).filter((d) => d.startsWith(prefix))) {
        for (let i = 0; i < 50; i++) {
          try {
            removeTree(join(at, dir));
            break;
          } catch {
            wait(20);
          }
        }
      }
    } finally {
      spawnSync('umount', [at], { stdio: 'ignore' });
    }
  }
}

function removeTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(join(dir, entry.name));
  }
  rmdirSync(dir);
}

function childOf(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
