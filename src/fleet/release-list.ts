import { type DesiredState, readHistory } from './desired-state.ts';
import type { FleetPaths } from './fleet-paths.ts';
import { listReleases } from './release.ts';

/** One release on disk as `clones releases`, the fleet API and the dashboard list it. */
export interface ReleaseEntry {
  release: string;
  name: string;
  builtAt: string;
  /** The release the desired state runs. */
  current: boolean;
  /** The canary release of the desired state. */
  canary: boolean;
  /** When it was last deployed (or brought up) successfully. */
  deployedAt: string | null;
  /** The last history line about it, whatever its outcome: `deploy failed 2026-...`. */
  lastAction: string | null;
}

/**
 * The releases in `paths.releases`, newest build first, marked against `state`, with their history: read from
 * the disk, so the CLI lists them whether or not the fleet runs.
 *
 * @example
 *   releaseList(paths, new DesiredStateFile(paths.desired).read()).filter((r) => r.current);
 */
export function releaseList(paths: FleetPaths, state: DesiredState | undefined): ReleaseEntry[] {
  const history = readHistory(paths.history);
  return listReleases(paths).map((r) => {
    const mine = history.filter((h) => h.release === r.digest);
    const last = mine.at(-1);
    return {
      release: r.digest,
      name: r.manifest.name,
      builtAt: r.manifest.builtAt,
      current: r.digest === state?.release,
      canary: r.digest === state?.canary?.release,
      deployedAt: mine.filter((h) => h.outcome === 'ok').at(-1)?.at ?? null,
      lastAction: last ? `${last.action} ${last.outcome} ${last.at}` : null,
    };
  });
}
