import { connectFleet, type FleetStatus, fleetPaths } from '../fleet/index.ts';
import { cloneUsage } from '../fleet/process-usage.ts';
import { parse, positionals } from './args.ts';
import { durationText } from './deploy-table.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones status [options]

The running fleet: desired release and epoch, each clone's id, release, state, health and port, the
group weights and the balancer's version guard.

Options:
  --home DIR            the fleet's directory (default ./.clones)
  --json                the status as one JSON object`;

export const status: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {});
    positionals(args, 0, 'clones status');
    const client = connectFleet(fleetPaths(values.home));
    const s = (await client.get('/status')) as FleetStatus;
    if (values.json) {
      console.log(JSON.stringify({ ...s, balancer: { host: client.info.host, port: client.info.port } }));
      return 0;
    }
    const short = (r: string) => r.slice(0, 12);
    console.log(`balancer  http://${client.info.host}:${client.info.port}`);
    console.log(
      `release   ${short(s.release)}  epoch ${s.epoch}  strategy ${s.strategy}  clones ${s.clonesWanted}`,
    );
    if (s.canary) console.log(`canary    ${short(s.canary.release)} x${s.canary.clones}`);
    if (s.lock)
      console.log(`lock      ${s.lock.action} of ${short(s.lock.release)} since ${s.lock.startedAt}`);
    console.log(
      `weights   ${s.groups.map((g) => `${g.name}=${g.weight} (${g.healthy}/${g.targets} healthy)`).join('  ') || '-'}`,
    );
    console.log(`guard     ${s.guard ? s.guard.map(short).join(', ') : 'off'}`);
    if (s.groupStickiness)
      console.log(`sticky    a client keeps its group for ${durationText(s.groupStickiness)}`);
    console.log('');
    console.log(
      `${'CLONE'.padEnd(6)} ${'RELEASE'.padEnd(13)} ${'STATE'.padEnd(9)} ${'HEALTH'.padEnd(10)} ${'PORT'.padEnd(6)} ${'PID'.padEnd(8)} RESTARTS  ${'UPTIME'.padEnd(8)} ${'CPU'.padEnd(8)} ${'RSS'.padEnd(8)} REASON`,
    );
    for (const c of s.clones) {
      console.log(
        `${c.id.padEnd(6)} ${short(c.release).padEnd(13)} ${c.state.padEnd(9)} ${c.health.padEnd(10)} ${String(c.port).padEnd(6)} ${String(c.pid ?? '-').padEnd(8)} ${String(c.restarts).padEnd(9)} ${usageColumns(c, s.hosts === null)} ${c.reason ?? ''}`,
      );
    }
    return 0;
  },
};

/** Uptime, CPU time and RSS of a clone (like `pm2 ls`); CPU and RSS measured here, or by the host agent of a clone on another host. */
function usageColumns(c: FleetStatus['clones'][number], local: boolean): string {
  const up = Math.max(0, Math.round((Date.now() - Date.parse(c.startedAt)) / 1000));
  const uptime =
    up < 3600
      ? `${Math.floor(up / 60)}m${up % 60}s`
      : `${Math.floor(up / 3600)}h${Math.floor((up % 3600) / 60)}m`;
  const u = cloneUsage(c, local);
  const cpu = u ? `${u.cpuSeconds.toFixed(1)}s` : '-';
  const rss = u ? `${Math.round(u.rss / 1048576)}MiB` : '-';
  return `${uptime.padEnd(8)} ${cpu.padEnd(8)} ${rss.padEnd(8)}`;
}
