import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One load run: a route hammered by `connections` keep-alive connections for `seconds`. */
export interface LoadRun {
  url: string;
  method: 'GET' | 'POST';
  cookie: string | undefined;
  connections: number;
  seconds: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  p99Ms: number;
  /** Non-2xx answers plus connection errors: a run with any is not a valid measurement. */
  failures: number;
}

export interface LoadTool {
  name: string;
  version: string;
  run(load: LoadRun): Promise<LoadResult>;
}

const WRK = '/usr/bin/wrk';

/**
 * wrk when it is installed (a C load generator, lighter on a small machine), else autocannon from
 * node_modules.
 *
 * @example
 *   const tool = loadTool();
 *   const r = await tool.run({ url: 'http://127.0.0.1:3000/read', method: 'GET', cookie, connections: 16, seconds: 5 });
 */
export function loadTool(): LoadTool {
  return existsSync(WRK) ? wrk() : autocannon();
}

interface AutocannonResult {
  requests: { total: number };
  latency: { p99: number };
  duration: number;
  errors: number;
  non2xx: number;
}
type Autocannon = (
  options: Record<string, unknown>,
  done: (err: Error | null, r: AutocannonResult) => void,
) => void;

function autocannon(): LoadTool {
  const require = createRequire(import.meta.url);
  const run = require('autocannon') as Autocannon;
  const version = (require('autocannon/package.json') as { version: string }).version;
  return {
    name: 'autocannon',
    version,
    run: (load) =>
      new Promise((resolve, reject) => {
        run(
          {
            url: load.url,
            method: load.method,
            headers: load.cookie ? { cookie: load.cookie } : {},
            connections: load.connections,
            duration: load.seconds,
          },
          (err, r) => {
            if (err) return reject(err);
            resolve({
              requestsPerSecond: r.requests.total / r.duration,
              p99Ms: r.latency.p99,
              failures: r.errors + r.non2xx,
            });
          },
        );
      }),
  };
}

/** wrk with a Lua script that sets the method and the cookie, and counts non-2xx answers at the end. */
function wrk(): LoadTool {
  const version = /wrk\s+(\S+)/.exec(spawnSync(WRK, ['-v'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? '?';
  return {
    name: 'wrk',
    version,
    async run(load) {
      const script = join(tmpdir(), `clones-bench-${process.pid}.lua`);
      const cookie = load.cookie ? `wrk.headers["Cookie"] = ${JSON.stringify(load.cookie)}\n` : '';
      await writeFile(
        script,
        `wrk.method = "${load.method}"\n${cookie}` +
          'done = function(summary, latency, requests)\n' +
          '  io.write(string.format("P99_US %d\\nNON2XX %d\\n", latency:percentile(99),' +
          ' summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write' +
          ' + summary.errors.timeout))\n' +
          'end\n',
      );
      const threads = String(Math.min(2, load.connections));
      const args = [
        '-t',
        threads,
        '-c',
        String(load.connections),
        '-d',
        `${load.seconds}s`,
        '-s',
        script,
        load.url,
      ];
      const out = spawnSync(WRK, args, { encoding: 'utf8' });
      if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr || out.stdout}`);
      const number = (pattern: RegExp) => Number(pattern.exec(out.stdout)?.[1] ?? Number.NaN);
      return {
        requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
        p99Ms: number(/P99_US (\d+)/) / 1000,
        failures: number(/NON2XX (\d+)/),
      };
    },
  };
}
