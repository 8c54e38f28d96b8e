import { usageError } from '../errors.ts';
import { fleetPaths } from '../fleet/fleet-paths.ts';
import { hostsConfig } from '../fleet/host-config.ts';
import { setupHosts } from '../fleet/host-setup.ts';
import { SshTransport } from '../fleet/ssh-transport.ts';
import { parse, positionals } from './args.ts';
import { printEvent } from './event-line.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones setup [app-dir] [options]

Prepares every host of the fleet (clones.json "hosts", or --host) over SSH: checks Node (>= 20, the same
major as here), free disk and the agent's port; installs this version of clones there (only the files
the host lacks); starts the host agent (a systemd unit where systemd runs the host, else a detached,
supervised process). Prints what it did per host; running it again changes nothing.

Options:
  --host USER@ADDR[:P]    a host (repeatable; replaces clones.json "hosts")
  --accept-new-host-keys  record the key of a host known_hosts does not name yet (a changed key is
                          always refused)
  --home DIR              the fleet's directory (default ./.clones)
  --json                  one NDJSON event per host and step`;

export const setup: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {
      host: { type: 'string', multiple: true },
      'accept-new-host-keys': { type: 'boolean' },
    });
    const [appDir = '.'] = positionals(args, 1, 'clones setup [app-dir]');
    const config = hostsConfig(appDir, { host: values.host });
    if (!config) throw usageError('no hosts: list them in clones.json "hosts" or pass --host user@address');
    const json = values.json ?? false;
    const paths = fleetPaths(values.home);
    const ssh = new SshTransport({
      knownHosts: config.ssh.knownHosts,
      parallel: config.ssh.parallel,
      acceptNewHostKeys: values['accept-new-host-keys'] ?? false,
    });
    try {
      const { results } = await setupHosts(ssh, config, paths, (e) => {
        if (json) printEvent(e, true);
      });
      let failed = 0;
      for (const r of results) {
        if (!r.ok) {
          failed++;
          if (json)
            printEvent(
              {
                type: 'host',
                host: r.host.name,
                step: 'setup',
                outcome: 'failed',
                error: r.error.toJSON().error,
              },
              true,
            );
          else console.log(`${r.host.name.padEnd(16)} failed: ${r.error.message} (${r.error.code})`);
          continue;
        }
        const v = r.value;
        if (json) continue;
        const what = v.changed.length === 0 ? 'unchanged' : `changed: ${v.changed.join(', ')}`;
        console.log(`${r.host.name.padEnd(16)} ${what}  (node ${v.node}, ${v.root}, ${v.bytes} bytes sent)`);
      }
      return failed > 0 ? 1 : 0;
    } finally {
      await ssh.close();
    }
  },
};
