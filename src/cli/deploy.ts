import { usageError } from '../errors.ts';
import type { Strategy } from '../fleet/index.ts';
import { buildRelease, connectFleet, DesiredStateFile, fleetPaths, readRelease } from '../fleet/index.ts';
import { duration, int, oneOf, parse, positionals, printEvent } from './args.ts';
import type { Verb } from './main.ts';

const HELP = `Usage: clones deploy [app-dir] [options]

Builds the release of app-dir (default: the app the fleet runs) and rolls it out to the running
"clones up". Exits 0 only when every clone runs the new release; on failure the fleet rolls back
by itself and the command exits 1 with the reason.

Options:
  --strategy S          rolling (default), blue-green or canary
  --steps LIST          canary weights in percent, one after another (default 10,50,100)
  --step-wait D         how long each canary step is watched (default 30s)
  --canary-clones N     clones of the canary release (default 1)
  --canary-margin PCT   abort when the canary's 5xx rate exceeds the stable one's by more (default 5)
  --home DIR            the fleet's directory (default ./.clones)
  --json                progress as NDJSON events`;

export const deploy: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {
      strategy: { type: 'string' },
      steps: { type: 'string' },
      'step-wait': { type: 'string' },
      'canary-clones': { type: 'string' },
      'canary-margin': { type: 'string' },
    });
    const [dir] = positionals(args, 1, 'clones deploy [app-dir]');
    const strategy = oneOf<Strategy>('--strategy', values.strategy, ['rolling', 'blue-green', 'canary']);
    const steps = values.steps?.split(',').map((s) => int('--steps', s.trim(), 1, 100)!);
    if (steps?.some((s, i) => i > 0 && s <= steps[i - 1]!))
      throw usageError('--steps must increase, e.g. 10,50,100');
    const margin = int('--canary-margin', values['canary-margin'], 0, 100);
    const json = values.json ?? false;
    const paths = fleetPaths(values.home);
    const client = connectFleet(paths);
    const appDir =
      dir ??
      readRelease(paths, new DesiredStateFile(paths.desired).read()?.release ?? client.info.release).manifest
        .source;
    const release = buildRelease(appDir, paths);
    printEvent({ type: 'release', release: release.digest, created: release.created }, json);
    await client.stream(
      '/deploy',
      {
        release: release.digest,
        strategy,
        steps,
        stepWait: duration('--step-wait', values['step-wait']),
        canaryClones: int('--canary-clones', values['canary-clones'], 1, 64),
        canaryMargin: margin === undefined ? undefined : margin / 100,
      },
      (event) => printEvent(event, json),
    );
    return 0;
  },
};
