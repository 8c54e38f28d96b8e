import { STICKY_DURATION } from '../balancer/index.ts';
import { startFleet } from '../fleet/index.ts';
import { logOutput } from '../logger.ts';
import { duration, durationWithin, envFlags, int, oneOf, parse, positionals } from './args.ts';
import { printEvent } from './event-line.ts';
import { upEventPrinter } from './up-events.ts';
import type { Verb } from './verb.ts';
import { report } from './verb.ts';

const HELP = `Usage: clones up [app-dir] [options]

Builds the release of app-dir (default: .), starts the balancer and N clones of it, and stays in the
foreground; Ctrl-C stops gracefully (drain, SIGTERM, SIGKILL after --stop-grace).

Options:
  --clones N            clones to run (default 3)
  --port P              balancer port (default 8080)
  --listen ADDRESS      balancer address (default 127.0.0.1)
  --sticky DURATION     how long a client keeps its target group (canary stickiness; default 1d)
  --balancer ENGINE     builtin (default) or haproxy (HAProxy 2.6+ driven through its runtime API)
  --tls-cert FILE       serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate (+ chain) and
  --tls-key FILE        this key; both are reloaded when the files change (built-in balancer)
  --health-path PATH    what a clone answers 200 on when ready, checked before it serves and by the
                        balancer after (default: clones.json "healthPath", else /up)
  --access-log          the balancer logs every request (Combined Log Format) to
                        .clones/logs/balancer-access.log; read it with "clones logs balancer"
  --ready-timeout D     a clone must answer its health path with 200 within this (default 30s)
  --drain-timeout D     in-flight requests of a stopping clone get this long (default 30s)
  --stop-grace D        SIGTERM, then SIGKILL after this (default 10s)
  --env KEY=VALUE       declare a variable in the release, over clones.json "env" (repeatable;
                        part of the digest; secrets are refused: give those to this command's env)
  --host USER@ADDR[:P]  run the clones on this host, over SSH (repeatable; replaces clones.json
                        "hosts"); with hosts, --clones is per host and the first up sets them up
  --accept-new-host-keys  record the key of a host known_hosts does not name yet (a changed key
                        is always refused)
  --admin-port P        port of the admin API and the dashboard on 127.0.0.1 (default: any free
                        port; a fixed one keeps an open dashboard working across restarts)
  --log-format FORMAT   human or json: progress lines and log records (default: human progress;
                        log records human on a terminal, JSON lines otherwise)
  --home DIR            the fleet's directory (default ./.clones)
  --json                progress as NDJSON events (implies --log-format json)`;

export const up: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {
      clones: { type: 'string' },
      port: { type: 'string' },
      listen: { type: 'string' },
      sticky: { type: 'string' },
      balancer: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'access-log': { type: 'boolean' },
      'health-path': { type: 'string' },
      'ready-timeout': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'stop-grace': { type: 'string' },
      env: { type: 'string', multiple: true },
      host: { type: 'string', multiple: true },
      'accept-new-host-keys': { type: 'boolean' },
      'admin-port': { type: 'string' },
      'log-format': { type: 'string' },
    });
    const [appDir = '.'] = positionals(args, 1, 'clones up [app-dir]');
    const format =
      values['log-format'] && oneOf('--log-format', values['log-format'], ['human', 'json'] as const);
    const json = (values.json ?? false) || format === 'json';
    // Log records: human on a terminal, JSON otherwise, unless the flags say which.
    if (format || json) logOutput.format = json ? 'json' : 'human';
    const sticky = durationWithin('--sticky', values.sticky, STICKY_DURATION.min, STICKY_DURATION.max);
    const releaseEnv = envFlags(values.env);
    const supervisor = {
      readyTimeout: duration('--ready-timeout', values['ready-timeout']),
      drainTimeout: duration('--drain-timeout', values['drain-timeout']),
      stopGrace: duration('--stop-grace', values['stop-grace']),
    };
    const running = await startFleet({
      appDir,
      home: values.home,
      clones: int('--clones', values.clones, 1, 256),
      port: int('--port', values.port, 0, 65_535),
      host: values.listen,
      releaseEnv,
      balancer: {
        ...(sticky === undefined ? {} : { groupStickiness: { duration: sticky } }),
        ...(values.balancer === undefined
          ? {}
          : { engine: oneOf('--balancer', values.balancer, ['builtin', 'haproxy'] as const) }),
        ...(values['tls-cert'] || values['tls-key']
          ? { tls: { cert: values['tls-cert'], key: values['tls-key'] } }
          : {}),
      },
      accessLog: values['access-log'] ?? false,
      supervisor: Object.fromEntries(Object.entries(supervisor).filter(([, v]) => v !== undefined)),
      healthPath: values['health-path'],
      onEvent: (event) => printEvent(event, json),
      hosts: values.host,
      acceptNewHostKeys: values['accept-new-host-keys'] ?? false,
      adminPort: int('--admin-port', values['admin-port'], 0, 65_535),
    });
    running.fleet.watch(upEventPrinter(running.fleet.paths.logs, json));
    const { address, runtime } = running;
    const url = `${values['tls-cert'] ? 'https' : 'http'}://${address.address}:${address.port}`;
    if (json) printEvent({ type: 'up', url, dashboard: running.dashboardUrl, ...runtime }, true);
    else {
      console.log(`clones up: ${url}  release ${runtime.release.slice(0, 12)}  (Ctrl-C to stop)`);
      console.log(`dashboard: ${running.dashboardUrl}`);
    }

    return await new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          console.error('clones: stopping now');
          process.exit(130);
        }
        stopping = true;
        if (!json) console.log(`\n${signal}: draining and stopping clones...`);
        running.stop().then(
          () => resolve(0),
          (err) => resolve(report(err)),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
  },
};
