import type { Logger } from 'pino';
import { invalidOption } from '../errors.ts';
import { OptionIssues } from '../option-issues.ts';

export interface SshOptions {
  /** The known_hosts file (OpenSSH format) host keys are checked against. */
  knownHosts: string;
  /** Append the key of a host known_hosts does not name (like `accept-new`); a changed key is refused anyway. */
  acceptNewHostKeys?: boolean;
  /** Hosts worked on at once by `eachHost` (default 10). */
  parallel?: number;
  /** Milliseconds for TCP connect plus the SSH handshake and auth (default 10000). */
  readyTimeout?: number;
  /** Milliseconds between keepalives on an idle connection (default 15000); 3 unanswered ones drop it. */
  keepaliveInterval?: number;
  logger?: Logger;
}

/** SshOptions validated, with the defaults filled in (the logger aside). */
export type ResolvedSshOptions = Readonly<Required<Omit<SshOptions, 'logger'>>>;

/** Defaults for SshOptions, in one place. */
export const sshDefaults = Object.freeze({
  acceptNewHostKeys: false,
  parallel: 10,
  readyTimeout: 10_000,
  keepaliveInterval: 15_000,
});

/**
 * Validates SSH options once, naming the option in every message (CLONES_INVALID_OPTION), and freezes them.
 *
 * @example
 *   const o = resolveSshOptions({ knownHosts: '/home/me/.ssh/known_hosts', parallel: 4 });
 *   o.readyTimeout; // 10000
 */
export function resolveSshOptions(options: SshOptions): ResolvedSshOptions {
  if (typeof options?.knownHosts !== 'string' || options.knownHosts === '') {
    throw invalidOption(
      'ssh.knownHosts',
      'a known_hosts file path is required (host keys are always checked)',
    );
  }
  const o = { ...sshDefaults, ...stripUndefined(options) };
  // Every wrong option at once (the one validation path, src/option-issues.ts).
  const issues = new OptionIssues();
  const atLeast = (option: string, value: unknown, min: number) => {
    if (!Number.isInteger(value) || (value as number) < min)
      issues.add(option, `must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  };
  atLeast('ssh.parallel', o.parallel, 1);
  atLeast('ssh.readyTimeout', o.readyTimeout, 100);
  atLeast('ssh.keepaliveInterval', o.keepaliveInterval, 0);
  if (typeof o.acceptNewHostKeys !== 'boolean') issues.add('ssh.acceptNewHostKeys', 'must be true or false');
  issues.throwIfAny();
  return Object.freeze({
    knownHosts: options.knownHosts,
    acceptNewHostKeys: o.acceptNewHostKeys,
    parallel: o.parallel,
    readyTimeout: o.readyTimeout,
    keepaliveInterval: o.keepaliveInterval,
  });
}

/**
 * Throws CLONES_INVALID_OPTION naming `option` unless `value` is an integer of at least `min`.
 *
 * @example
 *   positiveInt('limit', width, 1);
 */
export function positiveInt(option: string, value: unknown, min: number): void {
  if (!Number.isInteger(value) || (value as number) < min) {
    throw invalidOption(option, `must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
