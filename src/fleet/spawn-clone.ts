import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FleetPaths } from './fleet-paths.ts';
import { readRelease } from './release.ts';
import type { SupervisedClone } from './supervised-clone.ts';
import { tsxLoader } from './tsx-loader.ts';

/** How a supervisor starts its clones. */
export interface SpawnOptions {
  paths: FleetPaths;
  /** Environment every clone gets, under the release's own env and the clone's PORT, HOST and CLONES_* ids. */
  env: NodeJS.ProcessEnv;
  /** The address the clone listens on (HOST). */
  bind: string;
  /** Its own session, its log file as stdout: it outlives the supervising process. */
  detached: boolean;
}

/** Output lines kept of a clone, for the reason it failed. */
const LOG_LINES = 40;

/**
 * Starts a clone's process from its release, on `clone.port`: a TypeScript entry through tsx, the release's
 * directory as cwd, its output appended to `<logs>/<id>.log` (and its last lines kept on `clone.lines`
 * unless detached). Watching the process is the caller's.
 *
 * @example
 *   const child = spawnClone({ paths, env, bind: '127.0.0.1', detached: false }, clone);
 *   child.once('exit', (code) => onExit(clone, code));
 */
export function spawnClone(o: SpawnOptions, clone: SupervisedClone): ChildProcess {
  const release = readRelease(o.paths, clone.release);
  const entry = join(release.dir, release.manifest.entry);
  // A TypeScript app compiled at build runs on plain Node, its stack traces mapped back to the .ts lines.
  // Else it runs through tsx (the app's own, else clones's), and takes clones's own TypeScript sources (the
  // `clones-source` export condition); a JavaScript app takes the compiled dist/.
  const run = release.manifest.run;
  const args = run
    ? ['--enable-source-maps', join(release.dir, run)]
    : /\.[cm]?ts$/.test(entry)
      ? [
          '--conditions=clones-source',
          '--import',
          tsxLoader(release.manifest.entry, [release.dir, release.manifest.source]),
          entry,
        ]
      : [entry];
  const logFile = join(o.paths.logs, `${clone.id}.log`);
  const env = {
    ...o.env,
    // The release's declared env wins over the host's: it is part of what was deployed (and its digest).
    ...release.manifest.env,
    PORT: String(clone.port),
    HOST: o.bind,
    CLONES_CLONE_ID: clone.id,
    CLONES_RELEASE: clone.release,
    CLONES_DATA_DIR: dataDir(o),
  };
  if (o.detached) {
    // Its own session and its log file as stdout: nothing ties it to this process's life.
    const fd = openSync(logFile, 'a', 0o600);
    const child = spawn(process.execPath, args, {
      cwd: release.dir,
      env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    return child;
  }
  clone.log ??= createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  const child = spawn(process.execPath, args, {
    cwd: release.dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer) => {
    clone.log?.write(chunk);
    const lines = chunk.toString('utf8').split('\n').filter(Boolean);
    clone.lines = [...clone.lines, ...lines].slice(-LOG_LINES);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return child;
}

/**
 * A clone's last output lines, for the reason it failed: kept in memory, or read back from the end of its
 * log file when it is detached.
 *
 * @example
 *   const error = appError(lastLines(options, clone));
 */
export function lastLines(o: Pick<SpawnOptions, 'paths' | 'detached'>, clone: SupervisedClone): string[] {
  if (!o.detached) return clone.lines;
  return tailLines(join(o.paths.logs, `${clone.id}.log`), LOG_LINES);
}

/**
 * CLONES_DATA_DIR: writable, on this machine, the same for every release (the release directory, a
 * clone's cwd, is read-only). The environment's own value wins (made absolute); else `<home>/data`.
 */
function dataDir(o: SpawnOptions): string {
  const dir = resolve(o.env.CLONES_DATA_DIR ?? o.paths.data);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** The last `n` lines of a log file (its last 16 KiB). */
function tailLines(file: string, n: number): string[] {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r');
    try {
      const length = Math.min(size, 16_384);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return buffer.toString('utf8').split('\n').filter(Boolean).slice(-n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
}
