import { ClonesError } from './clones-error.ts';

// Errors any part of clones may raise: options, usage, optional drivers, a port.
// Each factory makes one coded ClonesError, e.g. `throw invalidOption('storeTimeout', 'must be a positive number');`

/** An option or URL was wrong at start-up; the message names the option. */
export const invalidOption = (option: string, message: string): ClonesError =>
  new ClonesError('CLONES_INVALID_OPTION', `${option}: ${message}`);

/**
 * Several options were wrong at once: one error naming every one, a line each in the order they were checked,
 * so a user fixes them all in one go (a single issue reads exactly as `invalidOption`). With `source` (a config
 * file) the message starts `<source>: N error(s):` and indents the lines under it.
 *
 * @example
 *   throw invalidOptions([{ option: 'a', message: 'must be true or false' }, { option: 'b', message: '...' }]);
 */
export const invalidOptions = (
  issues: readonly { option: string; message: string }[],
  source?: string,
): ClonesError => {
  const lines = issues.map((i) => `${i.option}: ${i.message}`);
  return new ClonesError(
    'CLONES_INVALID_OPTION',
    source === undefined ? lines.join('\n') : `${source}: ${lines.length} error(s):\n  ${lines.join('\n  ')}`,
  );
};

/** Bad command-line input (unknown flag, missing or malformed value); the CLI exits with code 2. */
export const usageError = (message: string): ClonesError =>
  new ClonesError('CLONES_USAGE', message, { status: 400 });

/**
 * An optional driver package (ioredis, pg, @aws-sdk/client-dynamodb, better-sqlite3) is not installed: only
 * the backends an app uses need theirs. The message is the install command.
 */
export const driverMissing = (pkg: string, usedFor: string): ClonesError =>
  new ClonesError(
    'CLONES_DRIVER_MISSING',
    `${usedFor} needs the "${pkg}" package, which is not installed: run \`npm install ${pkg}\``,
  );

/** A driver is installed but cannot load (a native binding that failed to build, say); `fix` says how. */
export const driverBroken = (pkg: string, why: string, fix: string): ClonesError =>
  new ClonesError('CLONES_DRIVER_BROKEN', `"${pkg}" is installed but cannot be loaded (${why}): ${fix}`);

/** The balancer's port is taken (EADDRINUSE) or needs privileges (EACCES): the message says how to pick another. */
export const portUnavailable = (host: string, port: number, cause: NodeJS.ErrnoException): ClonesError =>
  new ClonesError(
    'CLONES_PORT_UNAVAILABLE',
    cause.code === 'EACCES'
      ? `port ${port} on ${host} needs privileges this process lacks: choose a port above 1023 with --port`
      : `port ${port} on ${host} is already in use (another clones up or server?): stop it, or choose another with --port`,
    { status: 500, cause },
  );
