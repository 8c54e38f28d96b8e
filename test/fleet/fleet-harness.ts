// Shared by the fleet and CLI tests: a temp copy of examples/shop, `clones up` as a real process, the CLI
// as a real process, and a small keep-alive load generator that records every response's release.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { removeTree } from '../../src/fleet/release.ts';
import { shellQuote } from '../../src/fleet/shell-quote.ts';
import { freePort } from '../harness/free-port.ts';
import type { TestHosts } from '../harness/hosts.ts';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const bin = join(repo, 'bin/clones.js');

/**
 * How the CLI is run: the compiled dist/ (default, as users run it), or the sources (`useSources`, or
 * CLONES_TEST_SOURCES=1 for every test file: no build needed while working on the sources).
 */
let cliArgs: string[] = [bin];
/** Environment every CLI process of this test file gets on top of process.env. */
let cliEnv: NodeJS.ProcessEnv = {};

/**
 * Runs the CLI from the TypeScript sources (`--conditions=clones-source` through tsx), with `env` added:
 * a test file that needs what dist/ may not have built yet.
 */
export function useSources(env: NodeJS.ProcessEnv = {}): void {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  cliArgs = ['--conditions=clones-source', '--import', tsx, bin];
  cliEnv = env;
}
if (process.env.CLONES_TEST_SOURCES === '1') useSources();

/** A temp dir holding a copy of examples/shop as `shop/`; `cleanup()` removes it (read-only releases too). */
export function tempApp(): { dir: string; app: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'clones-fleet-'));
  const app = join(dir, 'shop');
  cpSync(join(repo, 'examples/shop'), app, { recursive: true });
  return { dir, app, cleanup: () => removeTree(dir) };
}

/** Changes the app so that its next release has a new digest. */
export function touchApp(app: string, mark: string): void {
  writeFileSync(join(app, 'server.ts'), `${readFileSync(join(app, 'server.ts'), 'utf8')}\n// ${mark}\n`);
}

/** Makes the app's GET /up answer 503 forever: a release that never passes its health gate. */
export function breakApp(app: string): void {
  const file = join(app, 'server.ts');
  const text = readFileSync(file, 'utf8');
  writeFileSync(
    file,
    text.replace(
      "if (route === 'GET /up') return send(res, 200,",
      "if (route === 'GET /up') return send(res, 503,",
    ),
  );
}

export interface Up {
  port: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM and wait for the exit code (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | null>;
}

/** Runs `clones up shop` in `dir` and resolves once `.clones/up.json` exists. */
export async function startUp(dir: string, args: string[] = []): Promise<Up> {
  const port = await freePort();
  const child = spawn(process.execPath, [...cliArgs, 'up', 'shop', '--port', String(port), ...args], {
    cwd: dir,
    env: { ...process.env, ...cliEnv, CLONES_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return waitForUp(dir, port, child, cliArgs.length > 1 ? 180_000 : 30_000, () => child.kill('SIGTERM'));
}

/**
 * `clones up` on a terminal, as a person runs it: under `script` (a pseudo-terminal), with the default log
 * level. `output()` is what the terminal showed; `stop()` sends SIGTERM to the fleet process itself.
 */
export async function startUpOnTerminal(dir: string, args: string[] = []): Promise<Up> {
  const port = await freePort();
  const { CLONES_LOG_LEVEL: _level, ...env } = { ...process.env, ...cliEnv };
  const command = shellQuote([process.execPath, ...cliArgs, 'up', 'shop', '--port', String(port), ...args]);
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: dir,
    env: { ...env, TERM: 'xterm', COLUMNS: '120', LINES: '40' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return waitForUp(dir, port, child, 60_000, () => {
    // SIGTERM to the fleet process itself: script(1) does not pass it on.
    try {
      const upPid = (JSON.parse(readFileSync(join(dir, '.clones/up.json'), 'utf8')) as { pid: number }).pid;
      process.kill(upPid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  });
}

/**
 * Collects a started `clones up`'s output, waits until it has written up.json (or fails with what it
 * printed), and gives the Up handle; `terminate` asks it to stop, SIGKILL follows after the grace.
 */
async function waitForUp(
  dir: string,
  port: number,
  child: ChildProcess,
  readyMs: number,
  terminate: () => void,
): Promise<Up> {
  let out = '';
  child.stdout?.on('data', (c) => (out += c));
  child.stderr?.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + readyMs;
  while (!existsSync(join(dir, '.clones/up.json'))) {
    if (child.exitCode !== null) throw new Error(`clones up exited early:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`clones up not ready:\n${out}`);
    }
    await sleep(50);
  }
  return {
    port,
    child,
    output: () => out,
    async stop(graceMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      terminate();
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs the CLI to completion. */
export function cli(dir: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cliArgs, ...args], {
    cwd: dir,
    env: { ...process.env, ...cliEnv, CLONES_LOG_LEVEL: 'error' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI in the background (a deploy under load). */
export function cliAsync(
  dir: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> & { child: ChildProcess } {
  const child = spawn(process.execPath, [...cliArgs, ...args], {
    cwd: dir,
    env: { ...process.env, ...cliEnv, CLONES_LOG_LEVEL: 'error' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return Object.assign(done, { child });
}

export interface Sample {
  at: number;
  status: number;
  release: string;
  clone: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/** One request through the balancer. */
export function get(
  port: number,
  path: string,
  options: { method?: string; cookie?: string; body?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        agent,
        headers: {
          ...(options.cookie ? { cookie: options.cookie } : {}),
          ...(options.body !== undefined
            ? {
                'content-type': 'application/x-www-form-urlencoded',
                'content-length': Buffer.byteLength(options.body),
              }
            : {}),
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * Continuous GET load with `concurrency` loops until `stop()`; every response is recorded with the time
 * it was sent, its status and its x-clones-release. Errors count as failures (status 0).
 */
export function load(port: number, path = '/up', concurrency = 4) {
  const samples: Sample[] = [];
  const failures: string[] = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const at = Date.now();
      try {
        const r = await get(port, path);
        samples.push({
          at,
          status: r.status,
          release: String(r.headers['x-clones-release'] ?? ''),
          clone: String(r.headers['x-clones-clone'] ?? ''),
        });
        if (r.status !== 200) failures.push(`${r.status} ${r.body.slice(0, 200)}`);
      } catch (err) {
        samples.push({ at, status: 0, release: '', clone: '' });
        failures.push((err as Error).message);
      }
    }
  });
  return {
    samples,
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** `clones deploy shop --strategy canary --steps <steps> --step-wait <stepWait>` in the background. */
export function deployCanary(dir: string, steps: string, stepWait: string) {
  return cliAsync(dir, ['deploy', 'shop', '--strategy', 'canary', '--steps', steps, '--step-wait', stepWait]);
}

/** Reads `clones status --json`. */
export function status(dir: string): {
  release: string;
  clones: {
    id: string;
    release: string;
    pid: number;
    state: string;
    health: string;
    restarts: number;
    readyMs: number | null;
    reason?: string;
  }[];
  groups: { name: string; weight: number }[];
  guard: string[] | null;
  groupStickiness: number;
} {
  const r = cli(dir, ['status', '--json']);
  if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes the app's clones.json for a set of test hosts (2 clones each, the run's SSH identity and
 * known_hosts) and has the CLI run from the sources with sessions in the cache host's Redis.
 */
export function useTestHosts(app: string, hosts: TestHosts, clones = 2): void {
  useSources({ SESSION_STORE: hosts.cache!.redisUrl });
  writeFileSync(
    join(app, 'clones.json'),
    JSON.stringify({
      hosts: hosts.hosts.map((h) => ({ name: h.name, address: h.address, user: 'root', clones })),
      ssh: { identity: hosts.identity, knownHosts: hosts.knownHosts },
    }),
  );
}
