/**
 * clones/fleet: releases as content-addressed machine images, supervised clones, and deploys (rolling,
 * blue-green, canary) that leave no clone on old code.
 *
 * @example
 *   import { startFleet } from 'clones/fleet';
 *   const up = await startFleet({ appDir: 'examples/shop', clones: 3, port: 8080 });
 */
export { APP_CONFIG, appEnv } from './app-env.ts';
export type { CloneInfo, CloneState } from './clone-info.ts';
export type { DeployInProgress } from './deploy-control.ts';
export { acquireDeployLock, type LockInfo, readLock } from './deploy-lock.ts';
export type { DeployRequest } from './deploy-request.ts';
export {
  appendHistory,
  type DesiredState,
  DesiredStateFile,
  type DesiredStateSource,
  type HistoryEntry,
  previousRelease,
  readHistory,
  type Strategy,
} from './desired-state.ts';
export { devPackages } from './dev-packages.ts';
export { Fleet, type FleetOptions } from './fleet.ts';
export { createFleetApi } from './fleet-api.ts';
export { connectFleet, type FleetClient, type RuntimeInfo } from './fleet-client.ts';
export { fleetDefaults } from './fleet-defaults.ts';
export type { CloneEvent, Emit, FleetEvent, HostEvent } from './fleet-event.ts';
export { type FleetPaths, fleetPaths } from './fleet-paths.ts';
export type { FleetStatus } from './fleet-status.ts';
export {
  type BuildOptions,
  buildRelease,
  gcReleases,
  listReleases,
  type Release,
  type ReleaseManifest,
  readRelease,
  removeTree,
} from './release.ts';
export { type ReleaseEntry, releaseList } from './release-list.ts';
export {
  blueGreen,
  type CloneDriver,
  canarySteps,
  type RolloutContext,
  rolling,
  strategyFor,
} from './rollout/index.ts';
export { type RunningFleet, type StartFleetOptions, startFleet } from './start-fleet.ts';
export {
  Supervisor,
  type SupervisorOptions,
  type SupervisorTimings,
  supervisorDefaults,
} from './supervisor.ts';
export { type TargetState, targetStates } from './target-state.ts';
