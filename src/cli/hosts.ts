import { usageError } from '../errors.ts';
import { connectFleet, type FleetStatus, fleetPaths } from '../fleet/index.ts';
import { parse, positionals } from './args.ts';
import { runWithProgress } from './live-progress.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones hosts [add USER@ADDR[:P] | remove NAME] [options]

Without a command: the fleet's hosts with their state (reachable, in service), release and clones.
  add USER@ADDR[:P]     set the host up over SSH and add it: it boots, catches up with the desired
                        release, and only then serves
  remove NAME           drain the host's clones in the balancer, then stop them

Options:
  --home DIR            the fleet's directory (default ./.clones)
  --json                as JSON`;

export const hosts: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {});
    const [command, target] = positionals(args, 2, 'clones hosts [add HOST | remove NAME]');
    const client = connectFleet(fleetPaths(values.home));
    const json = values.json ?? false;
    if (command === 'add' || command === 'remove') {
      if (!target) throw usageError(`clones hosts ${command} needs a host`);
      const path = command === 'add' ? '/hosts' : `/hosts/${encodeURIComponent(target)}`;
      await runWithProgress(
        client,
        command === 'add' ? 'hosts add' : 'hosts remove',
        { host: target },
        { json, method: command === 'add' ? 'POST' : 'DELETE', path },
      );
      return 0;
    }
    if (command !== undefined) throw usageError(`unknown hosts command "${command}"; use add or remove`);
    const s = (await client.get('/status')) as FleetStatus;
    if (json) {
      console.log(JSON.stringify({ hosts: s.hosts ?? [] }));
      return 0;
    }
    if (!s.hosts) {
      console.log('this fleet runs on this machine only (no hosts configured)');
      return 0;
    }
    console.log(
      `${'HOST'.padEnd(16)} ${'ADDRESS'.padEnd(16)} ${'STATE'.padEnd(12)} ${'RELEASE'.padEnd(13)} CLONES`,
    );
    for (const h of s.hosts) {
      const state = !h.reachable ? 'unreachable' : h.inService ? 'serving' : 'catching up';
      console.log(
        `${h.name.padEnd(16)} ${h.address.padEnd(16)} ${state.padEnd(12)} ${(h.release ?? '-').slice(0, 12).padEnd(13)} ${h.clones} of ${h.clonesWanted}`,
      );
    }
    return 0;
  },
};
