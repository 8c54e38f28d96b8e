import { STICKY_DURATION } from '../balancer/index.ts';
import { usageError } from '../errors.ts';
import type { DeployInProgress, Strategy } from '../fleet/index.ts';
import { buildRelease, connectFleet, DesiredStateFile, fleetPaths, readRelease } from '../fleet/index.ts';
import { duration, durationWithin, envFlags, int, oneOf, parse, positionals } from './args.ts';
import { runWithProgress } from './live-progress.ts';
import type { Verb } from './verb.ts';

/** `--pause`, `--resume`, `--abort`: acts on the deploy another `clones deploy` (or the dashboard) runs. */
async function controlDeploy(
  verb: 'pause' | 'resume' | 'abort',
  paths: ReturnType<typeof fleetPaths>,
  json: boolean,
): Promise<number> {
  const { deploy: d } = (await connectFleet(paths).post(`/deploy/${verb}`, {})) as {
    deploy: DeployInProgress;
  };
  if (json) console.log(JSON.stringify({ type: verb, ...d }));
  else {
    const what = `${d.action} of ${d.release.slice(0, 12)} (${d.strategy})`;
    const done = { pause: 'paused', resume: 'resumed', abort: 'aborted: the fleet rolls back' }[verb];
    console.log(`${what} ${done}`);
  }
  return 0;
}

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
  --sticky D            for this deploy, how long a client keeps the release group it was given
                        (1s-7d; default: the --sticky of "clones up", 1d)
  --env KEY=VALUE       declare a variable in the release, over clones.json "env" (repeatable;
                        part of the digest; secrets are refused)
  --batch N|PCT         across hosts: hosts rolled at once, a number or a percentage (default 1)
  --skip-unreachable    across hosts: go on without hosts whose agent does not answer; they catch
                        up when they return (default: such a deploy fails, naming the host)
  --home DIR            the fleet's directory (default ./.clones)
  --json                progress as NDJSON events (default: a live table on a terminal, else lines)

The deploy in progress (from another terminal, as the dashboard does):
  --pause               hold the canary at its current step (its 5xx checks go on)
  --resume              let a paused canary go on with the rest of its step
  --abort               stop the deploy in progress: the fleet rolls back to the release before it`;

export const deploy: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {
      strategy: { type: 'string' },
      steps: { type: 'string' },
      'step-wait': { type: 'string' },
      'canary-clones': { type: 'string' },
      'canary-margin': { type: 'string' },
      sticky: { type: 'string' },
      env: { type: 'string', multiple: true },
      batch: { type: 'string' },
      'skip-unreachable': { type: 'boolean' },
      pause: { type: 'boolean' },
      resume: { type: 'boolean' },
      abort: { type: 'boolean' },
    });
    const control = (['pause', 'resume', 'abort'] as const).filter((v) => values[v]);
    if (control.length > 1) throw usageError('give one of --pause, --resume and --abort');
    if (control[0]) return controlDeploy(control[0], fleetPaths(values.home), values.json ?? false);
    const [dir] = positionals(args, 1, 'clones deploy [app-dir]');
    const strategy = oneOf<Strategy>('--strategy', values.strategy, ['rolling', 'blue-green', 'canary']);
    const steps = values.steps?.split(',').map((s) => int('--steps', s.trim(), 1, 100)!);
    if (steps?.some((s, i) => i > 0 && s <= steps[i - 1]!))
      throw usageError('--steps must increase, e.g. 10,50,100');
    const margin = int('--canary-margin', values['canary-margin'], 0, 100);
    const stepWait = duration('--step-wait', values['step-wait']);
    const canaryClones = int('--canary-clones', values['canary-clones'], 1, 64);
    const sticky = durationWithin('--sticky', values.sticky, STICKY_DURATION.min, STICKY_DURATION.max);
    const env = envFlags(values.env);
    const batch = values.batch?.endsWith('%')
      ? `${int('--batch', values.batch.slice(0, -1), 1, 100)}%`
      : int('--batch', values.batch, 1, 10_000);
    const json = values.json ?? false;
    const paths = fleetPaths(values.home);
    const client = connectFleet(paths);
    const appDir =
      dir ??
      readRelease(paths, new DesiredStateFile(paths.desired).read()?.release ?? client.info.release).manifest
        .source;
    const release = buildRelease(appDir, paths, { env });
    await runWithProgress(
      client,
      'deploy',
      {
        release: release.digest,
        strategy,
        steps,
        stepWait,
        canaryClones,
        canaryMargin: margin === undefined ? undefined : margin / 100,
        sticky,
        batch,
        skipUnreachable: values['skip-unreachable'] ?? false,
      },
      { json, first: { type: 'release', release: release.digest, created: release.created } },
    );
    return 0;
  },
};
