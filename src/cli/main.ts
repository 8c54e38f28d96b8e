import { report, type Verb } from './verb.ts';

const verbs: Record<string, () => Promise<Verb>> = {
  up: async () => (await import('./up.ts')).up,
  deploy: async () => (await import('./deploy.ts')).deploy,
  rollback: async () => (await import('./rollback.ts')).rollback,
  scale: async () => (await import('./scale.ts')).scale,
  drain: async () => (await import('./drain.ts')).drain,
  status: async () => (await import('./status.ts')).status,
  releases: async () => (await import('./releases.ts')).releases,
  balancer: async () => (await import('./balancer.ts')).balancer,
  setup: async () => (await import('./setup.ts')).setup,
  hosts: async () => (await import('./hosts.ts')).hosts,
  logs: async () => (await import('./logs.ts')).logs,
  agent: async () => (await import('./agent.ts')).agent,
};

const HELP = `clones: run a Node.js web app as identical clones behind a load balancer

Usage: clones <command> [options]

Commands:
  up [app-dir]        build the release, start the balancer and N clones (foreground)
  deploy [app-dir]    build and roll out a new release (rolling, blue-green or canary)
  rollback [release]  go back to the previous release
  scale N             run N clones
  drain CLONE         replace one clone: a new one starts, then CLONE drains and stops
  status              the release, epoch, clones and group weights of the running fleet
  releases            releases on disk
  balancer            a standalone load balancer from flags or a config file
  setup [app-dir]     prepare every host over SSH: checks, install clones, start the host agent
  hosts [add|remove]  the fleet's hosts with their state, release and clones
  logs [clone|release] the clones' logs (-f to follow, --since 10m), on every host
  agent               the host agent (run on each host by setup)

Run "clones <command> --help" for a command's options. Docs: docs/fleet.md`;

/**
 * Runs the `clones` command line; resolves with the exit code (0 ok, 1 failed, 2 bad input).
 *
 * @example
 *   process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFileSync } = await import('node:fs');
    console.log(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
    return 0;
  }
  const load = Object.hasOwn(verbs, name) ? verbs[name] : undefined;
  if (!load) {
    console.error(`clones: unknown command "${name}" (CLONES_USAGE)\nRun "clones --help" for the list.`);
    return 2;
  }
  const verb = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(verb.help);
    return 0;
  }
  try {
    return await verb.run(rest);
  } catch (err) {
    return report(err);
  }
}
