import { DesiredStateFile, fleetPaths, releaseList } from '../fleet/index.ts';
import { parse, positionals } from './args.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones releases [options]

The releases in .clones/releases, newest build first, with the one the fleet runs (*) and a pinned
canary (c). Reads the disk: works whether or not "clones up" runs.

Options:
  --home DIR            the fleet's directory (default ./.clones)
  --json                one JSON object`;

export const releases: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {});
    positionals(args, 0, 'clones releases');
    const paths = fleetPaths(values.home);
    const list = releaseList(paths, new DesiredStateFile(paths.desired).read());
    if (values.json) {
      console.log(JSON.stringify({ releases: list }));
      return 0;
    }
    if (list.length === 0) console.log(`no releases in ${paths.releases}`);
    for (const r of list) {
      const mark = r.current ? '*' : r.canary ? 'c' : ' ';
      console.log(`${mark} ${r.release.slice(0, 12)}  ${r.builtAt}  ${r.name}  ${r.lastAction ?? ''}`);
    }
    return 0;
  },
};
