// Test hosts for people: `npm run hosts -- up 3` starts 3 hosts (network namespaces with sshd, on a bridge,
// addresses in 198.18.0.0/15) plus a cache host running Redis, and leaves them running after it exits;
// `npm run hosts -- status` lists them; `npm run hosts -- down` removes every one of them. Needs root.
import { listRuns, removeStaleRuns, startTestHosts, teardownRun } from '../test/harness/hosts.ts';

const USAGE = `usage: npm run hosts -- up [N] [--no-cache] [--systemd]
                                            start N test hosts (default 3) and a Redis cache host;
                                            --systemd: each host runs systemd as its init
       npm run hosts -- status                   list running test hosts
       npm run hosts -- down [K]                 remove every test-host run (or only run K)`;

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'up') {
    const count = Number(rest.find((a) => /^\d+$/.test(a)) ?? 3);
    const flags = ['--no-cache', '--systemd'];
    const unknown = rest.filter((a) => !/^\d+$/.test(a) && !flags.includes(a));
    if (unknown.length > 0 || count < 1) {
      console.error(`unknown argument(s): ${unknown.join(' ') || count}\n${USAGE}`);
      return 2;
    }
    const run = await startTestHosts({
      count,
      cache: !rest.includes('--no-cache'),
      persistent: true,
      systemd: rest.includes('--systemd'),
    });
    console.log(`Test hosts run ${run.k} (prefix ${run.prefix}, bridge ${run.prefix}br ${run.gateway}/24):`);
    for (const h of run.hosts) {
      const init =
        h.systemdPid === undefined ? '' : `  systemd pid ${h.systemdPid} (nsenter -t ${h.systemdPid} -a)`;
      console.log(`  ${h.name}  root@${h.address}  ns ${h.ns}  home ${h.dir}${init}`);
    }
    if (run.cache) console.log(`  cache  ${run.cache.redisUrl}  ns ${run.cache.ns}`);
    console.log(`\nSSH identity: ${run.identity}\nknown_hosts:  ${run.knownHosts}`);
    console.log(
      `Try: ssh -i ${run.identity} -o UserKnownHostsFile=${run.knownHosts} root@${run.hosts[0]?.address} hostname -I`,
    );
    const sample = {
      hosts: run.hosts.map((h) => ({
        name: h.name,
        address: h.address,
        user: h.user,
        dir: h.dir,
        clones: 2,
        bind: h.address,
      })),
      ssh: { identity: run.identity, knownHosts: run.knownHosts },
    };
    console.log(`\nclones.json (hosts part):\n${JSON.stringify(sample, null, 2)}`);
    if (run.cache) console.log(`\nSESSION_STORE=${run.cache.redisUrl}`);
    console.log(`\nRemove with: npm run hosts -- down ${run.k}`);
    return 0;
  }
  if (verb === 'status') {
    removeStaleRuns();
    const runs = listRuns();
    if (runs.length === 0) console.log('no test hosts are running');
    for (const run of runs) {
      const r = run.record;
      const kind = run.persistent ? 'persistent (npm run hosts)' : 'owned by a running test';
      console.log(`run ${run.k}: ${kind}, ${r?.hosts.length ?? 0} host(s)${r?.cache ? ' + cache' : ''}`);
      for (const h of r?.hosts ?? []) console.log(`  ${h.name}  root@${h.address}  home ${h.dir}`);
      if (r?.cache) console.log(`  cache  ${r.cache.redisUrl}`);
      if (r) console.log(`  identity ${r.identity}  known_hosts ${r.knownHosts}`);
    }
    return 0;
  }
  if (verb === 'down') {
    const only = rest[0] === undefined ? undefined : Number(rest[0]);
    if (only !== undefined && !Number.isInteger(only)) {
      console.error(USAGE);
      return 2;
    }
    const stale = removeStaleRuns();
    const runs = listRuns().filter((r) => (only === undefined ? r.persistent : r.k === only));
    for (const run of runs) teardownRun(run.k);
    const gone = [...stale, ...runs.map((r) => r.k)];
    console.log(gone.length === 0 ? 'nothing to remove' : `removed test-host run(s) ${gone.join(', ')}`);
    return 0;
  }
  console.error(USAGE);
  return verb === undefined || verb === 'help' || verb === '--help' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error & { code?: string }) => {
    console.error(err.code ? `${err.code}: ${err.message}` : err);
    process.exit(1);
  },
);
