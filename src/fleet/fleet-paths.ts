import { join, resolve } from 'node:path';

/** Where a fleet keeps its files; everything lives under one `.clones/` directory. */
export interface FleetPaths {
  readonly home: string;
  /** Content-addressed, read-only releases: `releases/<sha256>/`. */
  readonly releases: string;
  /** The desired-state record the supervisor converges to. */
  readonly desired: string;
  /** Every deploy, rollback and scale, newest last (what `clones releases` and `rollback` read). */
  readonly history: string;
  readonly lock: string;
  /** What a running `clones up` publishes for the CLI: its pid and ports. */
  readonly runtime: string;
  readonly adminToken: string;
  readonly secret: string;
  readonly sessions: string;
  readonly logs: string;
  /**
   * The clones' writable data directory on this machine (CLONES_DATA_DIR): the default SQLite files of
   * clones/session and clones/data go here, never into the read-only release a clone runs from.
   */
  readonly data: string;
}

/**
 * The layout of a fleet's home directory (default `./.clones`).
 *
 * @example
 *   const paths = fleetPaths('.clones');
 *   readFileSync(paths.adminToken, 'utf8');
 */
export function fleetPaths(home = '.clones'): FleetPaths {
  const root = resolve(home);
  return Object.freeze({
    home: root,
    releases: join(root, 'releases'),
    desired: join(root, 'desired.json'),
    history: join(root, 'history.json'),
    lock: join(root, 'deploy.lock'),
    runtime: join(root, 'up.json'),
    adminToken: join(root, 'admin-token'),
    secret: join(root, 'secret'),
    sessions: join(root, 'sessions.db'),
    logs: join(root, 'logs'),
    data: join(root, 'data'),
  });
}

/** The balancer's access log in the fleet's `logs/` (`clones up --access-log`), without its `.log`. */
export const BALANCER_LOG = 'balancer-access';
